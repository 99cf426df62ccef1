namespace Spegel.Bench;

/// <summary>Order statistics over a handful of rounds or a few thousand samples.</summary>
public static class Stats
{
    public static double Median(IReadOnlyCollection<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    /// <summary>Nearest-rank percentile (the registry's hedge-delay learner uses the same definition).</summary>
    public static double Percentile(IReadOnlyCollection<double> values, double p)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToArray();
        var rank = (int)Math.Ceiling(p / 100 * sorted.Length) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Length - 1)];
    }

    /// <summary>The share of <paramref name="values"/> strictly above <paramref name="threshold"/>, in percent.</summary>
    public static double PercentAbove(IReadOnlyCollection<double> values, double threshold)
    {
        ArgumentNullException.ThrowIfNull(values);
        return values.Count == 0 ? double.NaN : 100.0 * values.Count(v => v > threshold) / values.Count;
    }
}
