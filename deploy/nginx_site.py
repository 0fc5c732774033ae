"""The shipped nginx sites (deploy/nginx/) made runnable here: on a free port, under
a directory of the test's, with the snippets they include."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SNIPPETS = ("myapp-errors.conf", "myapp-proxy.conf", "myapp-unknown-hosts.conf")


def site_config(upstream_file: str, port: int | None = None) -> str:
    """The shipped nginx site; for serving here, on a free port and our slots."""
    with open(os.path.join(ROOT, "deploy", "nginx", "myapp.conf")) as shipped:
        text = shipped.read()
    text = text.replace(
        "include /srv/myapp/upstream.conf;", f"include {upstream_file};"
    )
    if port is not None:
        text = text.replace("listen 80;", f"listen 127.0.0.1:{port};")
        text = text.replace("server_name api.example.com;", "server_name 127.0.0.1;")
    return text


def nginx_main_config(directory: str, site: str, port: int = 80) -> str:
    """A main nginx.conf around a site, everything under `directory`; the
    default server on `port`."""
    with open(os.path.join(directory, "site.conf"), "w") as handle:
        handle.write(site)
    install_snippets(directory, port)
    temp = {kind: os.path.join(directory, kind) for kind in ("body", "uwsgi", "proxy")}
    fastcgi, scgi = os.path.join(directory, "fastcgi"), os.path.join(directory, "scgi")
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}worker_processes 1;\npid {directory}/nginx.pid;\n"
        f"error_log {directory}/nginx-error.log;\nevents {{}}\nhttp {{\n"
        f"  access_log off;\n  client_body_temp_path {temp['body']};\n"
        f"  uwsgi_temp_path {temp['uwsgi']};\n  proxy_temp_path {temp['proxy']};\n"
        f"  fastcgi_temp_path {fastcgi};\n  scgi_temp_path {scgi};\n"
        f"  include {directory}/site.conf;\n}}\n"
    )


def install_snippets(directory: str, port: int = 80) -> None:
    """deploy/nginx's snippets where a site's `include snippets/...` finds them."""
    os.makedirs(os.path.join(directory, "snippets"), exist_ok=True)
    for name in SNIPPETS:
        with open(os.path.join(ROOT, "deploy", "nginx", name)) as shipped:
            text = shipped.read()
        if port != 80:
            listen = "listen 80 default_server;"
            text = text.replace(listen, f"listen 127.0.0.1:{port} default_server;")
        with open(os.path.join(directory, "snippets", name), "w") as copy:
            copy.write(text)
