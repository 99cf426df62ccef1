# syntax=docker/dockerfile:1
# The registry service, plus the CLI its init container runs (configure-containerd).
# Build from the repository root:  docker build -f deploy/docker/registry.Dockerfile -t <registry>/spegel-dapr/registry:<tag> .
# Not built in this repository's tests (no Docker engine there); see docs/operations.md, "What was verified how".

FROM --platform=$BUILDPLATFORM mcr.microsoft.com/dotnet/sdk:10.0 AS build
ARG TARGETARCH
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY lib/ lib/
COPY services/registry/ services/registry/
COPY tools/Spegel.Cli/ tools/Spegel.Cli/
RUN --mount=type=cache,target=/root/.nuget/packages \
    dotnet publish services/registry/Spegel.Registry.csproj -c Release -a "$TARGETARCH" -p:UseAppHost=false -o /out/app \
 && dotnet publish tools/Spegel.Cli/Spegel.Cli.csproj -c Release -a "$TARGETARCH" -p:UseAppHost=false -o /out/cli

# Chiseled Ubuntu: no shell, no package manager, runs as the non-root user "app" (uid 1654) unless the pod says
# otherwise. InvariantGlobalization is on, so the variant without ICU is enough.
FROM mcr.microsoft.com/dotnet/aspnet:10.0-noble-chiseled
WORKDIR /app
COPY --from=build /out/app/ /app/
COPY --from=build /out/cli/ /app/cli/
ENV Urls=http://+:5000
EXPOSE 5000
USER 1654
ENTRYPOINT ["dotnet", "/app/Spegel.Registry.dll"]
