// The tests measure latencies (404 within 50 ms, discovery within 1 s) on a two-core machine while each runs
// several containerds and service processes: run them one at a time so that one test's load is not another's noise.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
