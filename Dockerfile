# syntax=docker/dockerfile:1
# stsward serve in a container (docs/packaging.md).
#
#   docker build -t stsward .
#   docker run -d --name stsward \
#     -p 25:25 -p 53:53/udp -p 53:53 -p 80:80 -p 443:443 -p 127.0.0.1:8480:8480 \
#     -v stsward-state:/var/lib/stsward \
#     -v /srv/stsward/stsward.toml:/etc/stsward/stsward.toml:ro \
#     -v /srv/stsward/secret.key:/etc/stsward/secret.key:ro \
#     -v /srv/stsward/api-token:/etc/stsward/api-token:ro \
#     stsward
#
# The configuration, the sealing key and the API token are mounted, never baked in. The
# process runs as the unprivileged user stsward (uid 10001) and binds ports 25, 53, 80 and
# 443 through the file capability cap_net_bind_service on the binary, its only capability.
# The default config's API listens on 127.0.0.1 inside the container: to publish it, set
# api.listen = ["0.0.0.0:8480"] in the mounted config and put a TLS proxy in front of it.

# Builder: the release binary with the default features (legacy-tls), without the lab,
# stripped (the release profile keeps line tables).
FROM rust:1.95.0-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p stsward \
    && install -s -m 0755 target/release/stsward /stsward

# Runtime: what `ldd stsward` needs beyond the base image (libssl3 for the legacy TLS 1.0/1.1
# probe), CA certificates, and the binary with CAP_NET_BIND_SERVICE as a file capability.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl3 ca-certificates libcap2-bin \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 stsward \
    && useradd --system --uid 10001 --gid stsward --home-dir /var/lib/stsward \
        --no-create-home --shell /usr/sbin/nologin stsward \
    && install -d -o stsward -g stsward -m 0750 /var/lib/stsward \
    && install -d -m 0755 /etc/stsward
COPY --from=builder /stsward /usr/local/bin/stsward
RUN setcap cap_net_bind_service=+ep /usr/local/bin/stsward \
    && apt-get purge -y --auto-remove libcap2-bin \
    && rm -rf /var/lib/apt/lists/*
COPY dist/stsward.toml /etc/stsward/stsward.toml
# 25 SMTP report intake, 53 the delegated zone (UDP and TCP), 80 ACME HTTP-01, 443 the
# policy host, 8480 the REST API, dashboard and /metrics.
EXPOSE 25/tcp 53/udp 53/tcp 80/tcp 443/tcp 8480/tcp
VOLUME ["/var/lib/stsward"]
WORKDIR /var/lib/stsward
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/stsward"]
CMD ["serve", "--config", "/etc/stsward/stsward.toml"]
