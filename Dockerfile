# driftd container image: a build stage with the Rust toolchain, a slim runtime stage
# (glibc and zlib only; TLS is rustls with its own roots), running as a non-root user.
#   docker build -t driftd .
#   docker run --rm -p 9464:9464 -v $PWD/config:/etc/driftd driftd
FROM rust:1.95-bookworm AS build
WORKDIR /src
# librdkafka (bundled) builds with make and a C compiler, both in the rust image
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY examples ./examples
RUN cargo build --release --locked --bin driftd \
    && strip target/release/driftd

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends zlib1g \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/driftd --create-home driftd
COPY --from=build /src/target/release/driftd /usr/local/bin/driftd
COPY config/driftd.toml /etc/driftd/driftd.toml
USER 10001:10001
WORKDIR /var/lib/driftd
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/driftd"]
CMD ["run", "--config", "/etc/driftd/driftd.toml", "--log-format", "json"]
