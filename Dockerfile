# Latchkey's container image. Built by the official Rust image (the `image` profile of
# Cargo.toml: small, with the hot paths at full speed); the final stage is `scratch`
# with the binary, the C runtime it links, the CA certificates and a passwd entry: no shell,
# no package manager. It runs as uid 65532 and writes only under /data (a volume), so the root
# filesystem can be mounted read-only.
#
#   podman build -t latchkey .      (or docker build; scripts/image.sh builds and checks it)
#
# Settings are LATCHKEY_* variables (docs/configuration.md). The defaults here serve the
# embedded SQLite database from /data; a production node sets LATCHKEY_DATABASE_URL (PostgreSQL),
# LATCHKEY_SESSION_STORE (Redis), LATCHKEY_PUBLIC_URL and the master key (deploy/README.md).
ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY tests tests
COPY migrations migrations
COPY docs docs
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile image --locked -p latchkey \
    && install -D -m 0755 target/image/latchkey /rootfs/usr/local/bin/latchkey
# The dynamic libraries the binary loads (glibc's, libgcc's), found by ldd, and nothing more.
RUN ldd /rootfs/usr/local/bin/latchkey \
      | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' \
      | xargs -r cp --parents -L -t /rootfs \
    && mkdir -p /rootfs/etc/ssl/certs /rootfs/data /rootfs/tmp \
    && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
    && printf 'latchkey:x:65532:65532:Latchkey:/data:/nonexistent\n' > /rootfs/etc/passwd \
    && printf 'latchkey:x:65532:\n' > /rootfs/etc/group \
    && chown 65532:65532 /rootfs/data && chmod 0700 /rootfs/data && chmod 1777 /rootfs/tmp

FROM scratch
COPY --from=build /rootfs /
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="Latchkey" \
      org.opencontainers.image.description="Multi-tenant identity provider: OpenID Connect issuer, SAML bridge, MFA" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/latchkey" \
      org.opencontainers.image.documentation="https://example.invalid/latchkey/-/tree/main/deploy" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
ENV LATCHKEY_LISTEN=0.0.0.0:8080 \
    LATCHKEY_DATABASE_URL=sqlite:///data/latchkey.db \
    LATCHKEY_KEYS_DIR=/data/keys \
    LATCHKEY_LOG_FORMAT=json \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=6s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/latchkey", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/latchkey"]
CMD ["serve"]
