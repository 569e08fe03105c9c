# dabba: build the release binary (migrations are compiled into it), then run it from a small
# image as a non-root user. `docker build -t dabba .` from the repository root.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY migrations migrations
# The manifest names its benchmarks; they must be there for cargo to read it.
COPY benches benches
RUN cargo build --release --locked --bin dabba

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/dabba --create-home dabba
COPY --from=build /src/target/release/dabba /usr/local/bin/dabba
USER 10001:10001
ENV DABBA_BIND=0.0.0.0:8080 \
    DABBA_DATA_DIR=/var/lib/dabba \
    DABBA_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/dabba"]
CMD ["serve"]
