"""Decisions: the decision points, the rulebook, the facts rules read, decision records, and the
ruleset versions stored in the database that every process decides with."""
