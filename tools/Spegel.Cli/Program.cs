using Spegel.Cli;

return args.Length > 0 && args[0] == "configure-containerd"
    ? ConfigureContainerdCommand.Run(args[1..], Console.Out, Console.Error)
    : Usage();

static int Usage()
{
    Console.Error.WriteLine("usage: spegel configure-containerd [cleanup] --config-path DIR --mirror-target URL [...]");
    return 2;
}
