using Spectre.Console;
using Spegel.Cluster;
using Spegel.TestRig;

// Redirected output (logs, tests, CI) is read by programs: no wrapping at Spectre's default 80 columns.
if (Console.IsOutputRedirected)
{
    AnsiConsole.Profile.Width = 200;
}

try
{
    return args switch
    {
        ["demo", .. var rest] => await DemoCommand.RunAsync(Options.Parse(rest)),
        ["cluster", "up", .. var rest] => await ClusterCommands.UpAsync(Options.Parse(rest)),
        ["cluster", "status", .. var rest] => await ClusterCommands.StatusAsync(Options.Parse(rest)),
        ["cluster", "pull", .. var rest] => await ClusterCommands.PullAsync(Options.Parse(rest)),
        ["cluster", "down", .. var rest] => await ClusterCommands.DownAsync(Options.Parse(rest)),
        ["cluster", "supervise", .. var rest] => await Supervisor.RunAsync(Options.Parse(rest)),
        [] or ["help" or "-h" or "--help", ..] or ["cluster"] or ["cluster", "help" or "-h" or "--help"] => Usage(0),
        _ => Usage(2),
    };
}
catch (UsageException ex)
{
    Console.Error.WriteLine($"spegel: {ex.Message}");
    return 2;
}
catch (MissingToolException ex)
{
    Console.Error.WriteLine($"spegel: {ex.Message}");
    return 1;
}

static int Usage(int code)
{
    var text = """
        usage: ./spegel demo [--keep]
               ./spegel cluster up [--nodes N] [--workdir DIR] [--transport standalone|dapr]
               ./spegel cluster status [--workdir DIR]
               ./spegel cluster pull <node> <image> [--workdir DIR]
               ./spegel cluster down [--workdir DIR]

          demo     a 3-node cluster on this machine: pull on node-1 from a local upstream, take the upstream down,
                   pull on node-2 and node-3 from peers; prints where every blob came from. --keep leaves it running.
          up       start N nodes (default 3) and a resolver under DIR (default .work/cluster); returns once ready,
                   a detached supervisor keeps them running; DIR/cluster.json says how to reach them
          status   per node: alive, images, digests advertised, requests served, bytes to and from peers
          pull     pull an image on one node through its mirror configuration; reports each blob's source
          down     stop everything the cluster started, unmount, remove its folders; verifies nothing is left
        """;
    (code == 0 ? Console.Out : Console.Error).WriteLine(text);
    return code;
}
