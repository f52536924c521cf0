/** Pretrained backbones the studio can fetch (electron/engine/onnx/zoo.ts pins them): the listing every face shows. */
import { z } from 'zod';

export const BackboneListingSchema = z.object({
  /** What `mw-studio backbone fetch NAME` takes. */
  name: z.string(),
  description: z.string(),
  bytes: z.number().int().nonnegative(),
  /** Whether the file is in the user's cache (at `path`). */
  cached: z.boolean(),
  path: z.string(),
});
export type BackboneListing = z.infer<typeof BackboneListingSchema>;

/** Backbone names: what the pinned list uses, so a request can be checked before any lookup. */
export const BackboneNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'backbone name must be a short lower-case name such as resnet18');
