"""End-to-end tests: orders driven through the whole OMS on a simulated clock."""
