# syntax=docker/dockerfile:1
# snippet-guard: one static-ish binary with the subcommands lint, webhook and controller.
# The Helm chart (charts/snippet-guard) runs this image as ghcr.io/snippet-guard/snippet-guard:<appVersion>
# with the subcommand as the first container argument.

FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
# Sources only; .dockerignore keeps target/, .git/, charts/ and the Python venv out.
COPY . .
# --locked: build exactly what Cargo.lock pins. --profile dist: the release build without
# symbols or debug info (Cargo.toml). The cache mounts keep the registry and target/
# between builds; the binary is copied out of the cached target/ before the layer ends.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --profile dist --locked --bin snippet-guard \
    && install -D -m 0755 target/dist/snippet-guard /out/snippet-guard

# glibc + libgcc + CA certificates, no shell, no package manager; runs as nonroot (65532).
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="snippet-guard" \
      org.opencontainers.image.description="Finds nginx snippets that make ingress-nginx send a forwarding header twice" \
      org.opencontainers.image.source="https://github.com/snippet-guard/snippet-guard" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/snippet-guard /snippet-guard
USER 65532:65532
# webhook HTTPS, webhook metrics, controller HTTP (probes and metrics)
EXPOSE 8443 9090 8080
ENTRYPOINT ["/snippet-guard"]
CMD ["--help"]
