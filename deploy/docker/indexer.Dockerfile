# syntax=docker/dockerfile:1
# The indexer service.
# Build from the repository root:  docker build -f deploy/docker/indexer.Dockerfile -t <registry>/spegel-dapr/indexer:<tag> .
# Not built in this repository's tests (no Docker engine there); see docs/operations.md, "What was verified how".

FROM --platform=$BUILDPLATFORM mcr.microsoft.com/dotnet/sdk:10.0 AS build
ARG TARGETARCH
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY lib/ lib/
COPY services/indexer/ services/indexer/
RUN --mount=type=cache,target=/root/.nuget/packages \
    dotnet publish services/indexer/Spegel.Indexer.csproj -c Release -a "$TARGETARCH" -p:UseAppHost=false -o /out/app

FROM mcr.microsoft.com/dotnet/aspnet:10.0-noble-chiseled
WORKDIR /app
COPY --from=build /out/app/ /app/
ENV Urls=http://+:5001
EXPOSE 5001
USER 1654
ENTRYPOINT ["dotnet", "/app/Spegel.Indexer.dll"]
