print("lookalike")
