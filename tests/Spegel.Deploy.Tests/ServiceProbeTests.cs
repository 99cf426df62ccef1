using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Spegel.Deploy.Tests;

/// <summary>
/// Each service, started from its build output with the environment its rendered container gets (downward API
/// filled in for a sample node, no sidecar, no containerd), must accept that configuration and answer the paths its
/// probes use. The changes: the listen port is a free one, so tests can run side by side, and mounted Secret files
/// (the peer token) live in a scratch directory.
/// </summary>
public class ServiceProbeTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData("registry", "Spegel.Registry")]
    [InlineData("indexer", "Spegel.Indexer")]
    [InlineData("resolver", "Spegel.Resolver")]
    public async Task Probes_RenderedService_AnswerOnTheRealService(string component, string project)
    {
        var workload = Kustomize.Render(Kustomize.Base).DaemonSet(component);
        var app = workload.App;
        var port = FreePort();
        var scratch = Directory.CreateTempSubdirectory("spegel-probe-").FullName;
        var env = PodEnvironment.Resolve(app).ToDictionary(StringComparer.Ordinal);
        var containerPort = Workload.Port(app, "http").Str("containerPort")!;
        env["Urls"] = env["Urls"].Replace(":" + containerPort, ":" + port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);
        // Nothing of the host: a containerd that is not there (ready stays false, alive stays true).
        foreach (var key in env.Keys.Where(k => k.StartsWith("Spegel__Containerd__", StringComparison.Ordinal)).ToList())
        {
            env[key] = Path.Combine(scratch, key);
        }

        // Secret volumes as the kubelet fills them, under scratch: every file the environment names in one (the peer
        // token: the Dapr registry refuses to start without it) is written there with a fresh value.
        foreach (var mountPath in SecretMountPaths(workload, app))
        {
            foreach (var key in env.Keys.Where(k => env[k].StartsWith(mountPath + "/", StringComparison.Ordinal)).ToList())
            {
                var local = Path.Combine(scratch, "secrets", env[key].TrimStart('/'));
                Directory.CreateDirectory(Path.GetDirectoryName(local)!);
                File.WriteAllText(local, Convert.ToHexString(RandomNumberGenerator.GetBytes(32)));
                env[key] = local;
            }
        }

        var log = new StringBuilder();
        using var process = Start(project, env, log);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(5) };
            var startup = app.Obj("startupProbe").Str("httpGet", "path")!;
            await WaitUntilAnswering(http, startup, process, log);

            foreach (var probe in new[] { "startupProbe", "livenessProbe" })
            {
                using var response = await http.GetAsync(new Uri(app.Obj(probe).Str("httpGet", "path")!, UriKind.Relative));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }

            using (var ready = await http.GetAsync(new Uri(app.Obj("readinessProbe").Str("httpGet", "path")!, UriKind.Relative)))
            {
                // Exists: 200 when the dependencies answer, 503 here where containerd is absent; never 404.
                Assert.Contains(ready.StatusCode, new[] { HttpStatusCode.OK, HttpStatusCode.ServiceUnavailable });
            }

            string text;
            lock (log)
            {
                text = log.ToString();
            }

            Assert.DoesNotContain("invalid configuration", text, StringComparison.Ordinal);
            Assert.DoesNotContain("peer authentication off", text, StringComparison.Ordinal);
            var started = text.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith('{'))
                .Select(l => JsonNode.Parse(l)!.AsObject())
                .Single(l => l.Str("msg") == "service started");
            Assert.Equal("Dapr", started.Str("transport"));
            Assert.Equal(PodEnvironment.SampleNode["spec.nodeName"], started.Str("node"));
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }

            Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>Where <paramref name="app"/> mounts Secret volumes.</summary>
    private static IEnumerable<string> SecretMountPaths(Workload workload, JsonObject app) =>
        ((app["volumeMounts"] as JsonArray)?.Cast<JsonObject>() ?? [])
            .Where(m => workload.Volume(m.Str("name")!)["secret"] is not null)
            .Select(m => m.Str("mountPath")!);

    private static Process Start(string project, Dictionary<string, string> env, StringBuilder log)
    {
        var dll = ServiceDll(project);
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        foreach (var inherited in new[] { "ASPNETCORE_URLS", "ASPNETCORE_HTTP_PORTS", "Urls", "DAPR_HTTP_PORT", "DAPR_GRPC_PORT" })
        {
            start.Environment.Remove(inherited);
        }

        foreach (var (key, value) in env)
        {
            start.Environment[key] = value;
        }

        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => Append(log, e.Data);
        process.ErrorDataReceived += (_, e) => Append(log, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static void Append(StringBuilder log, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (log)
        {
            log.Append(line).Append('\n');
        }
    }

    private static async Task WaitUntilAnswering(HttpClient http, string path, Process process, StringBuilder log)
    {
        var stopwatch = Stopwatch.StartNew();
        while (stopwatch.Elapsed < Deadline)
        {
            if (process.HasExited)
            {
                Assert.Fail($"the service exited with {process.ExitCode}:\n{Snapshot(log)}");
            }

            try
            {
                using var response = await http.GetAsync(new Uri(path, UriKind.Relative));
                return;
            }
            catch (HttpRequestException)
            {
                await Task.Delay(100);
            }
        }

        Assert.Fail($"no answer on {path} within {Deadline}:\n{Snapshot(log)}");
    }

    private static string Snapshot(StringBuilder log)
    {
        lock (log)
        {
            return log.ToString();
        }
    }

    /// <summary>The service's dll built in the same configuration as this test assembly (artifacts/bin/&lt;project&gt;/&lt;config&gt;/).</summary>
    private static string ServiceDll(string project)
    {
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Name;
        var dll = Path.Combine(Kustomize.RepoRoot, "artifacts", "bin", project, configuration, project + ".dll");
        Assert.True(File.Exists(dll), $"{dll} is not built (the test project references it, so a build of this project builds it)");
        return dll;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
