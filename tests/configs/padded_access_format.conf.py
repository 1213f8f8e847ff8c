# corpus: serve
# A column-aligned access log: %-format widths on the atoms.
accesslog = "-"
access_log_format = '%(t)s APP %(p)-10s %(h)-15s %(s)s %(m)5s "%(U)s" %(M)sms'
workers = 1
