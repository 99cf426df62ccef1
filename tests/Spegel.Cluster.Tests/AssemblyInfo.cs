// Each test runs whole clusters (3 containerds, 7 services): one at a time on a 2-core machine.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
