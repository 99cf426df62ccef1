# syntax=docker/dockerfile:1
# The resolver service.
# Build from the repository root:  docker build -f deploy/docker/resolver.Dockerfile -t <registry>/spegel-dapr/resolver:<tag> .
# Not built in this repository's tests (no Docker engine there); see docs/operations.md, "What was verified how".

FROM --platform=$BUILDPLATFORM mcr.microsoft.com/dotnet/sdk:10.0 AS build
ARG TARGETARCH
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY lib/ lib/
COPY services/resolver/ services/resolver/
RUN --mount=type=cache,target=/root/.nuget/packages \
    dotnet publish services/resolver/Spegel.Resolver.csproj -c Release -a "$TARGETARCH" -p:UseAppHost=false -o /out/app

FROM mcr.microsoft.com/dotnet/aspnet:10.0-noble-chiseled
WORKDIR /app
COPY --from=build /out/app/ /app/
ENV Urls=http://+:5002
EXPOSE 5002
USER 1654
ENTRYPOINT ["dotnet", "/app/Spegel.Resolver.dll"]
