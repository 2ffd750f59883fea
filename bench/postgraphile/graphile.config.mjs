// PostGraphile 5 over the bench database, for the side-by-side figures of W1 and W2 (bench/workloads/postgraphile.py).
// Its own schema is generated from the tables: organization → products → contract, documents…
// Started as: node node_modules/.bin/postgraphile -C postgraphile/graphile.config.mjs
// with DATABASE_URL, PORT set by the bench. No auth and no RLS: it reads the tables as they are.
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PostGraphileAmberPreset],
  pgServices: [
    makePgService({
      connectionString: process.env.DATABASE_URL,
      schemas: ["public"],
      poolConfig: { max: Number(process.env.PG_POOL_MAX || 10) },
    }),
  ],
  grafserv: {
    host: "127.0.0.1",
    port: Number(process.env.PORT || 5678),
    graphiql: false,
    watch: false,
  },
  grafast: { explain: false },
};

export default preset;
