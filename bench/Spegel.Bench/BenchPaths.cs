namespace Spegel.Bench;

/// <summary>Where the repository, the services' build output, the results and the run's logs are.</summary>
public sealed class BenchPaths
{
    private BenchPaths(string repoRoot, string configuration, string logDirectory, string runStamp)
    {
        RunStamp = runStamp;
        RepoRoot = repoRoot;
        Configuration = configuration;
        LogDirectory = logDirectory;
    }

    public string RepoRoot { get; }

    /// <summary>The run's UTC timestamp: the stem of its result files.</summary>
    public string RunStamp { get; }

    /// <summary>The build configuration folder name (release/debug) the harness itself was built in; the services are built alongside.</summary>
    public string Configuration { get; }

    /// <summary>Service, nginx and load-client logs of this run (under the temp directory; kept, they are small).</summary>
    public string LogDirectory { get; }

    /// <summary><c>bench/results</c>, or the directory given with <c>--results-dir</c> (the smoke test writes to a temp one).</summary>
    public string ResultsDirectory { get; private set; } = string.Empty;

    /// <summary><c>docs/benchmarks.md</c>, or the file given with <c>--docs</c>.</summary>
    public string BenchmarksDoc { get; private set; } = string.Empty;

    /// <summary>Points the results and the summary elsewhere (null keeps the repository's).</summary>
    public BenchPaths WithOutputs(string? resultsDirectory, string? benchmarksDoc)
    {
        ResultsDirectory = Path.GetFullPath(resultsDirectory ?? Path.Combine(RepoRoot, "bench", "results"));
        BenchmarksDoc = Path.GetFullPath(benchmarksDoc ?? Path.Combine(RepoRoot, "docs", "benchmarks.md"));
        return this;
    }

    public static BenchPaths Discover(string runStamp)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Spegel.Dapr.sln")))
        {
            dir = dir.Parent;
        }

        if (dir is null)
        {
            throw new InvalidOperationException($"Spegel.Dapr.sln not found above {AppContext.BaseDirectory}; run the harness from its build output in the repository.");
        }

        var configuration = new DirectoryInfo(AppContext.BaseDirectory).Name;
        var logs = Path.Combine(Path.GetTempPath(), "spegel-bench", runStamp);
        Directory.CreateDirectory(logs);
        return new BenchPaths(dir.FullName, configuration, logs, runStamp).WithOutputs(null, null);
    }

    /// <summary>
    /// The service's entry assembly in this run's private copy of its build output (see <see cref="SnapshotServices"/>),
    /// or in artifacts/ when no copy was made.
    /// </summary>
    public string ServiceDll(string project)
    {
        var copy = Path.Combine(LogDirectory, "bin", project, project + ".dll");
        if (File.Exists(copy))
        {
            return copy;
        }

        var path = Path.Combine(RepoRoot, "artifacts", "bin", project, Configuration, project + ".dll");
        return File.Exists(path)
            ? path
            : throw new FileNotFoundException($"{project} is not built in {Configuration}: run `dotnet build -c {Configuration}` (or `./spegel build`) first.", path);
    }

    /// <summary>
    /// Copies the services' build output aside for this run, so every process of the run is the same build even when
    /// artifacts/ is rebuilt meanwhile (another build in the same work tree).
    /// </summary>
    public void SnapshotServices(IEnumerable<string> projects)
    {
        ArgumentNullException.ThrowIfNull(projects);
        foreach (var project in projects)
        {
            var source = Path.Combine(RepoRoot, "artifacts", "bin", project, Configuration);
            if (!File.Exists(Path.Combine(source, project + ".dll")))
            {
                throw new FileNotFoundException($"{project} is not built in {Configuration}: run `dotnet build -c {Configuration}` (or `./spegel build`) first.", source);
            }

            var target = Path.Combine(LogDirectory, "bin", project);
            foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
            {
                var destination = Path.Combine(target, Path.GetRelativePath(source, file));
                Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
                File.Copy(file, destination, overwrite: true);
            }
        }
    }
}
