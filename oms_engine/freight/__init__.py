"""Freight: what delivery costs the customer, by templates from master data chosen by rules/freight.yaml.

Used at intake when a channel sends no freight, and to check the figure it sends (charges.py); a template
prices a parcel by the zone of its destination, its weight and the goods' worth (templates.py).
"""
