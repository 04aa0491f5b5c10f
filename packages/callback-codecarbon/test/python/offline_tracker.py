"""Runs the real codecarbon OfflineEmissionsTracker until told to stop.

argv: output_dir country_iso_code measure_power_secs tracking_mode
Prints "started" once the tracker measures, stops when a line arrives on stdin, then prints
the path of the CSV it wrote.
"""
import os
import sys

from codecarbon import OfflineEmissionsTracker

output_dir, country, measure_secs, mode = sys.argv[1:5]
tracker = OfflineEmissionsTracker(
    country_iso_code=country,
    tracking_mode=mode,
    measure_power_secs=float(measure_secs),
    log_level="error",
    output_dir=output_dir,
    save_to_file=True,
)
tracker.start()
print("started", flush=True)
sys.stdin.readline()
tracker.stop()
print(os.path.join(output_dir, "emissions.csv"), flush=True)
