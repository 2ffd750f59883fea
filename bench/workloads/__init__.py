"""The bench's workloads, one module each: `async def run(bench)` measures it and files its figures
under `bench.results["workloads"]`."""
