"""The keyword arguments ``rsgi.run`` takes: every setting by its
gunicorn name (``tests/test_gunicorn_compat.py`` checks this list against the
settings table).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence, TypedDict


class Settings(TypedDict, total=False):
    """Settings for ``rsgi.run``, as a configuration file would set them."""

    config: str
    wsgi_app: str
    bind: str | Sequence[str]
    backlog: int | str
    workers: int | str
    worker_class: str | type
    threads: int | str
    worker_connections: int | str
    timeout: int | str
    graceful_timeout: int | str
    max_requests: int | str
    max_requests_jitter: int | str
    max_worker_memory: int | str
    keepalive: int | str
    limit_request_line: int | str
    limit_request_fields: int | str
    limit_request_field_size: int | str
    limit_request_body: int | str
    reload: bool | str
    reload_engine: str
    reload_extra_files: str | Sequence[str]
    spew: bool | str
    check_config: bool | str
    print_config: bool | str
    preload_app: bool | str
    sendfile: bool | str
    reuse_port: bool | str
    chdir: str
    daemon: bool | str
    raw_env: str | Sequence[str]
    pidfile: str
    worker_tmp_dir: str
    user: str | int
    group: str | int
    umask: int | str
    initgroups: bool | str
    tmp_upload_dir: str
    pythonpath: str
    loglevel: str
    proc_name: str
    default_proc_name: str
    accesslog: str
    disable_redirect_access_to_syslog: bool | str
    access_log_format: str
    errorlog: str
    capture_output: bool | str
    logger_class: str | type
    logconfig: str
    logconfig_dict: Any
    logconfig_json: str
    syslog_addr: str
    syslog: bool | str
    syslog_prefix: str
    syslog_facility: str
    enable_stdio_inheritance: bool | str
    statsd_host: str
    dogstatsd_tags: str
    statsd_prefix: str
    enable_backlog_metric: bool | str
    metrics_bind: str
    static_map: str | Sequence[str]
    paste: str
    raw_paste_global_conf: str | Sequence[str]
    header_map: str
    strip_header_spaces: bool | str
    permit_unconventional_http_method: bool | str
    permit_unconventional_http_version: bool | str
    casefold_http_method: bool | str
    permit_obsolete_folding: bool | str
    forwarded_allow_ips: str | Sequence[str]
    secure_scheme_headers: Mapping[str, str]
    forwarder_headers: str | Sequence[str]
    proxy_protocol: str | bool
    proxy_allow_ips: str | Sequence[str]
    protocol: str
    uwsgi_allow_ips: str | Sequence[str]
    root_path: str
    keyfile: str
    certfile: str
    ssl_version: str
    cert_reqs: int | str
    ca_certs: str
    suppress_ragged_eofs: bool | str
    do_handshake_on_connect: bool | str
    ciphers: str
    ssl_context: Callable[..., Any]
    http_protocols: str | Sequence[str]
    http2_cleartext: str
    http2_max_concurrent_streams: int | str
    http2_initial_window_size: int | str
    http2_max_frame_size: int | str
    http2_max_header_list_size: int | str
    asgi_loop: str
    asgi_lifespan: str
    asgi_disconnect_grace_period: int | str
    websocket_max_message_size: int | str
    websocket_max_queue: int | str
    websocket_ping_interval: float | int | str
    websocket_ping_timeout: float | int | str
    http_parser: str
    dirty_apps: str | Sequence[str]
    dirty_workers: int | str
    dirty_timeout: int | str
    dirty_threads: int | str
    dirty_graceful_timeout: int | str
    on_dirty_starting: Callable[..., Any]
    dirty_post_fork: Callable[..., Any]
    dirty_worker_init: Callable[..., Any]
    dirty_worker_exit: Callable[..., Any]
    control_socket: str
    control_socket_mode: int | str
    control_socket_disable: bool | str
    on_starting: Callable[..., Any]
    on_reload: Callable[..., Any]
    when_ready: Callable[..., Any]
    pre_fork: Callable[..., Any]
    post_fork: Callable[..., Any]
    post_worker_init: Callable[..., Any]
    worker_int: Callable[..., Any]
    worker_abort: Callable[..., Any]
    pre_exec: Callable[..., Any]
    pre_request: Callable[..., Any]
    post_request: Callable[..., Any]
    child_exit: Callable[..., Any]
    worker_exit: Callable[..., Any]
    nworkers_changed: Callable[..., Any]
    on_exit: Callable[..., Any]
