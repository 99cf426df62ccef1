# syntax=docker/dockerfile:1
# The registry service as a Native AOT binary (PublishAot in its project: idle RSS a fraction of the JIT build's,
# start-up in milliseconds), plus the CLI its init container runs (configure-containerd).
# Build from the repository root:  docker build -f deploy/docker/registry.Dockerfile -t <registry>/spegel-dapr/registry:<tag> .
# Not built in this repository's tests (no Docker engine there); see docs/operations.md, "What was verified how".
# The AOT publish itself is (tests/Spegel.Aot.Tests publishes and runs the binary).

# Native AOT compiles for the machine it runs on, so the build stage runs on the target platform (emulated when
# building for another architecture), with clang and zlib's headers for the native link.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY lib/ lib/
COPY services/registry/ services/registry/
COPY tools/Spegel.Cli/ tools/Spegel.Cli/
RUN --mount=type=cache,target=/root/.nuget/packages \
    dotnet publish services/registry/Spegel.Registry.csproj -c Release --use-current-runtime -o /out/app \
 && dotnet publish tools/Spegel.Cli/Spegel.Cli.csproj -c Release -p:UseAppHost=false -o /out/cli

# Chiseled Ubuntu: no shell, no package manager, runs as the non-root user "app" (uid 1654) unless the pod says
# otherwise. The registry needs no runtime; the aspnet variant is kept for the CLI the init container runs.
FROM mcr.microsoft.com/dotnet/aspnet:10.0-noble-chiseled
WORKDIR /app
COPY --from=build /out/app/ /app/
COPY --from=build /out/cli/ /app/cli/
ENV Urls=http://+:5000
EXPOSE 5000
USER 1654
ENTRYPOINT ["/app/Spegel.Registry"]
