import { Type } from '@sinclair/typebox'
import { Nullable } from './common.js'

const PathStep = Type.Object({ code: Type.String({ description: 'digits only' }), description: Type.String() })
const Path = Type.Array(PathStep, { description: 'From the chapter down to the entry itself, as present in the table (HTML stripped)' })

/** One entry of the official NCM table (GET /ncm/:code). */
export const NcmEntry = Type.Object({
  code: Type.String({ description: 'digits only, e.g. 85423190' }),
  code_formatted: Type.String({ description: 'as Siscomex writes it, e.g. 8542.31.90' }),
  description: Type.String(),
  path: Path,
  is_item: Type.Boolean({ description: '8 digits: an item a product can be classified in' }),
  in_force: Type.Boolean({ description: 'in force today (Brasília)' }),
  starts_on: Type.String({ format: 'date' }),
  ends_on: Nullable(Type.String({ format: 'date' })),
  act: Type.String({ description: 'the act that created the entry, e.g. "Res Camex 272/2021"' }),
  ipi: Nullable(Type.Number({ description: 'TIPI rate in percent, without Ex; null when not known or NT' })),
  ipi_rates: Type.Array(Type.Object({ ex: Type.String({ description: '"" for the item itself' }), rate: Nullable(Type.Number()) })),
  table_version: Type.String({ description: 'act; update text; import time' }),
  items: Type.Array(Type.Object({ code: Type.String(), code_formatted: Type.String(), description: Type.String(), in_force: Type.Boolean() }), {
    description: 'A chapter, heading or subheading: the items under it, in code order (at most 500; many read only "Outros" and mean something under it); empty for an item',
  }),
  items_total: Type.Integer({ description: 'how many items are under it (items lists at most 500)' }),
}, { $id: 'NcmEntry' })

export const NcmSearchHit = Type.Object({
  code: Type.String(),
  code_formatted: Type.String(),
  description: Type.String(),
  path: Path,
  is_item: Type.Boolean(),
  in_force: Type.Boolean(),
  score: Type.Number({ description: 'higher is better' }),
}, { $id: 'NcmSearchHit' })
