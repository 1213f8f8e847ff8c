workers = "x"
