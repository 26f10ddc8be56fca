"""claimed: in progress"""
