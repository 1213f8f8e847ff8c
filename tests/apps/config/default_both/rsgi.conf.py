proc_name = "from-rsgi-conf"
