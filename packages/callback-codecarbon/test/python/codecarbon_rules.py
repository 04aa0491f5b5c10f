"""codecarbon 3.3.2's own rules, for the unit tests to compare against.

Reads a JSON request on stdin and prints a JSON answer:
  {"repr": [floats]}                        -> Python repr of each float
  {"ram": [GiB]}                            -> RAM W by codecarbon's DIMM model (x86 and ARM)
  {"tdp": [model names]}                    -> the cpu_power.csv row codecarbon matches, or null
  {"intensity": [{country, region, cloud_provider, cloud_region}]} -> g CO2eq/kWh
  {"ini": text}                             -> the [codecarbon] section as configparser reads it
  {"csv": [rows]}                           -> the text pandas' to_csv writes for those rows
                                               (a value {"float": x} is a float, {"int": x} an int)
"""
import io
import json
import sys

import pandas as pd
from codecarbon.core.cpu import TDP
from codecarbon.core.emissions import Emissions
from codecarbon.core.units import Energy
from codecarbon.external.geography import CloudMetadata, GeoMetadata
from codecarbon.external.ram import RAM
from codecarbon.input import DataSource

request = json.load(sys.stdin)
answer = {}

if "repr" in request:
    answer["repr"] = [repr(float(x)) for x in request["repr"]]

if "ram" in request:
    x86 = RAM(force_ram_power=None)
    x86.is_arm_cpu = False
    arm = RAM(force_ram_power=None)
    arm.is_arm_cpu = True
    answer["ram"] = [
        {"x86": x86._calculate_ram_power(gb), "arm": arm._calculate_ram_power(gb)}
        for gb in request["ram"]
    ]

if "tdp" in request:
    table = DataSource().get_cpu_power_data()
    finder = TDP.__new__(TDP)
    answer["tdp"] = [finder._get_matching_cpu(model, table) for model in request["tdp"]]

if "intensity" in request:
    emissions = Emissions(DataSource())
    out = []
    for place in request["intensity"]:
        geo = GeoMetadata(country_iso_code=place.get("country"), region=place.get("region"))
        if place.get("cloud_provider"):
            cloud = CloudMetadata(provider=place["cloud_provider"], region=place["cloud_region"])
            kg = emissions.get_cloud_emissions(Energy.from_energy(1.0), cloud, geo)
        else:
            kg = emissions.get_private_infra_emissions(Energy.from_energy(1.0), geo)
        out.append(kg * 1000)
    answer["intensity"] = out

if "ini" in request:
    import configparser

    parser = configparser.ConfigParser()
    parser.read_string(request["ini"])
    answer["ini"] = dict(parser["codecarbon"]) if parser.has_section("codecarbon") else {}

if "csv" in request:
    buffer = io.StringIO()
    def typed(value):
        if isinstance(value, dict):
            return float(value["float"]) if "float" in value else int(value["int"])
        return value

    rows = [{k: typed(v) for k, v in row.items()} for row in request["csv"]]
    pd.DataFrame.from_records(rows).to_csv(buffer, index=False)
    answer["csv"] = buffer.getvalue()

json.dump(answer, sys.stdout)
