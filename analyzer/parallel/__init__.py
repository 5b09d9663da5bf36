"""Every core and a Dask cluster: the captures read with the serial run's records.

Owns: `child` (reading in a forked child while the parent loads pandas, or in this process for
`--jobs 1`), `units` (a capture session
read by a worker from a fresh state, with the census of what it saw), `merge` (the results walked in
the serial order, re-reading any session that state carried from an earlier one could have changed),
`multicore` (the forked worker pool and one progress total), `distributed` (the same units on Dask
distributed), `beside` (a job in a forked child while this process does another: the views written
beside the base tables).
It sits above the pipeline and the report layers it drives; it must not import the API or the command
line, which call it.
"""
