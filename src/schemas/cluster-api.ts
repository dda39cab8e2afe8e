import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { ProvisioningHeaders, ProvisioningUnauthorizedResponse } from "./auth.ts"
import { ClusterListing, DrainStarted } from "./cluster.ts"

/** Operators (the provisioning key or an operator access token): the instances, and draining this one. */
export class ClusterApi extends HttpApiGroup.make("cluster", { topLevel: true })
  .add(
    HttpApiEndpoint.get("list", "/api/cluster", { headers: ProvisioningHeaders, success: ClusterListing, error: ProvisioningUnauthorizedResponse }),
    HttpApiEndpoint.post("drain", "/api/admin/drain", {
      headers: ProvisioningHeaders,
      success: DrainStarted.pipe(HttpApiSchema.status(202)),
      error: ProvisioningUnauthorizedResponse
    })
  )
  .annotateMerge(OpenApi.annotations({
    title: "Cluster",
    description: "The instances sharing Postgres and Redis, and the drain of this one (operators)"
  }))
{}
