using System.Globalization;
using Spegel.TestRig;

namespace Spegel.Cluster.Tests;

/// <summary>
/// A <c>daprd</c> on PATH for <c>cluster up --transport dapr</c>: the real runtime cannot be installed on this
/// machine (no package provides it). Each run records its arguments, one per line, to <c>argv.&lt;pid&gt;</c> in
/// its folder. <see cref="FakeDaprdKind.Fails"/> then prints a line and exits 1 at once.
/// <see cref="FakeDaprdKind.Serves"/> listens where the real one would (<c>--dapr-http-port</c>,
/// <c>--dapr-grpc-port</c>, <c>--dapr-internal-grpc-port</c>, <c>--metrics-port</c>) and answers 204 to every HTTP
/// request on the HTTP port, which is what the tool's readiness check (<c>GET /v1.0/healthz</c>) looks for; it
/// implements no Dapr API. It runs as perl (perl-base, always installed) under the name <c>daprd</c>, so its
/// command line names it as the real one does.
/// </summary>
internal sealed class FakeDaprd : IAsyncDisposable
{
    private const string ServeScript = """
        use strict;
        use warnings;
        use IO::Socket::INET;
        use IO::Select;

        my %opt;
        for (my $i = 0; $i < @ARGV; $i++) {
            $opt{$1} = $ARGV[$i + 1] // '' if $ARGV[$i] =~ /^--(.+)$/;
        }
        my $select = IO::Select->new;
        my %http;
        for my $flag (qw(dapr-http-port dapr-grpc-port dapr-internal-grpc-port metrics-port)) {
            my $socket = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $opt{$flag}, Listen => 16, ReuseAddr => 1)
                or die "fake daprd: cannot listen on --$flag $opt{$flag}: $!\n";
            $select->add($socket);
            $http{fileno $socket} = $flag eq 'dapr-http-port';
        }
        $| = 1;
        print qq({"level":"info","msg":"fake daprd for app-id $opt{'app-id'} listening on $opt{'dapr-http-port'}"}\n);
        while (1) {
            for my $listener ($select->can_read) {
                my $client = $listener->accept or next;
                if ($http{fileno $listener}) {
                    while (my $line = <$client>) { last if $line eq "\r\n"; }
                    print $client "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                }
                close $client;
            }
        }

        """;

    public const string FailureLine = "fake daprd: refusing to start (test double)";

    private FakeDaprd(string directory) => Directory = directory;

    /// <summary>The folder to put first on PATH.</summary>
    public string Directory { get; }

    public static FakeDaprd Create(FakeDaprdKind kind)
    {
        var directory = RigDirectory.Create("fake-daprd");
        var script = kind switch
        {
            FakeDaprdKind.Serves => """
                #!/bin/bash
                dir="$(dirname "$0")"
                printf '%s\n' "$@" > "$dir/argv.$$"
                exec -a daprd /usr/bin/perl "$dir/fake-daprd.pl" "$@"

                """,
            _ => $"""
                #!/bin/bash
                printf '%s\n' "$@" > "$(dirname "$0")/argv.$$"
                echo "{FailureLine}" >&2
                exit 1

                """,
        };
        File.WriteAllText(Path.Combine(directory, "fake-daprd.pl"), ServeScript);
        var path = Path.Combine(directory, "daprd");
        File.WriteAllText(path, script);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        return new FakeDaprd(directory);
    }

    /// <summary>Every run so far: its pid and its arguments (an empty argument is an empty string).</summary>
    public IReadOnlyDictionary<int, IReadOnlyList<string>> Runs() =>
        System.IO.Directory.GetFiles(Directory, "argv.*").ToDictionary(
            f => int.Parse(Path.GetExtension(f)[1..], CultureInfo.InvariantCulture),
            f => (IReadOnlyList<string>)File.ReadAllLines(f));

    public async ValueTask DisposeAsync() => await RigDirectory.RemoveAsync(Directory);
}

internal enum FakeDaprdKind
{
    /// <summary>Exits 1 at once, as a daprd that cannot load its resources does.</summary>
    Fails,

    /// <summary>Listens on its ports and answers its health endpoint until stopped.</summary>
    Serves,
}
