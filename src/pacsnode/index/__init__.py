"""The index: what is stored, where, and the attributes queries match on."""
