// `pnpm bench`: every benchmark, one after the other; each prints its figures and writes JSON.
import { benchDispatch } from "./dispatch.js";

benchDispatch();
