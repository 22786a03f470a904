# realtime-hub: one image with both binaries, hub-server and hub-client-web.
# Build:  docker build -t realtime-hub .   (or `make setup`, which builds it through docker-compose.yml)
# Works with the classic builder and with BuildKit (no BuildKit-only syntax).

############################ build ############################
FROM rust:1-bookworm AS build
WORKDIR /src

# 1. Dependencies only, so a source change does not rebuild them: the manifests, the lock file,
#    and vendor/ (empty but for .gitkeep unless deploy/vendor.sh filled it for an offline build).
COPY Cargo.toml Cargo.lock ./
COPY hub-server/Cargo.toml hub-server/
COPY hub-client-web/Cargo.toml hub-client-web/
COPY hub-bench/Cargo.toml hub-bench/
COPY http-accept/Cargo.toml http-accept/
COPY service-kit/Cargo.toml service-kit/
# hub-client (the Rust SDK) is a workspace member: cargo cannot load the workspace without it.
COPY hub-client/Cargo.toml hub-client/
COPY vendor/ vendor/
# With vendored sources, cargo must use them instead of crates.io (which containers may not reach).
RUN if find vendor -mindepth 1 -maxdepth 1 -type d | grep -q .; then \
      mkdir -p .cargo && printf '%s\n' '[source.crates-io]' 'replace-with = "vendored-sources"' \
        '[source.vendored-sources]' 'directory = "vendor"' '[net]' 'offline = true' > .cargo/config.toml; \
    fi \
 && for c in hub-server hub-client-web hub-bench http-accept service-kit hub-client; do \
      mkdir -p "$c/src" && echo 'fn main() {}' > "$c/src/main.rs" && touch "$c/src/lib.rs"; \
    done \
 && cargo build --release --locked -p hub-server -p hub-client-web \
 && rm -rf hub-server/src hub-client-web/src hub-bench/src http-accept/src service-kit/src hub-client/src

# 2. The workspace's own code. touch: the copied files may be older than the placeholder build above.
COPY hub-server/ hub-server/
COPY hub-client-web/ hub-client-web/
COPY hub-bench/ hub-bench/
COPY http-accept/ http-accept/
COPY service-kit/ service-kit/
COPY hub-client/ hub-client/
COPY templates/ templates/
COPY static/ static/
# The JS SDK's modules: hub-client-web embeds them and serves them under /sdk/ (for pages to import).
COPY clients/js/src/ clients/js/src/
RUN find hub-server hub-client-web hub-bench http-accept service-kit hub-client templates static clients/js/src -type f -exec touch {} + \
 && cargo build --release --locked -p hub-server -p hub-client-web \
 && cp target/release/hub-server target/release/hub-client-web /usr/local/bin/

############################ run ############################
FROM debian:bookworm-slim
# A fixed uid, so volumes and policies can name it; no home, no shell.
RUN groupadd --gid 10001 hub \
 && useradd --no-log-init --uid 10001 --gid hub --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin hub
COPY --from=build /usr/local/bin/hub-server /usr/local/bin/hub-client-web /usr/local/bin/
# The page's template, static/ and the JS SDK are compiled into hub-client-web: no data files to copy.
USER hub:hub
ENV HUB_LISTEN=0.0.0.0:8080 WEB_LISTEN=0.0.0.0:9081
# Ports: hub-server 8080 (HUB_LISTEN), hub-client-web 9081 (WEB_LISTEN); compose publishes them.
# The container healthcheck is liveness (GET /health/live on HUB_LISTEN's port, through bash's /dev/tcp:
# no curl in the image), so a Redis outage does not mark the hub unhealthy; `hub-server healthcheck`
# asks readiness (/health) for whoever needs it (make setup). Compose sets the web servers' own.
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${HUB_LISTEN##*:} && printf 'GET /health/live HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && read -r status <&3 && [[ $status == HTTP/1.?' 200'* ]]"]
# docker stop sends SIGTERM: hub-server closes clients with 1001 and exits within HUB_SHUTDOWN_GRACE.
STOPSIGNAL SIGTERM
CMD ["hub-server"]
