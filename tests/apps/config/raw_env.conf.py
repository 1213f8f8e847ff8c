raw_env = ["FROM_FILE=file value", "SECOND=a=b"]
