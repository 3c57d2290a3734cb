"""Privacy: the erase_customer job (erasure of one customer from every store)."""
