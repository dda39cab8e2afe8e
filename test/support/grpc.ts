import * as grpc from "@grpc/grpc-js"

/** Binds a fake's gRPC server without TLS on `host:port` (0: any free port); resolves with the port. */
export const bindInsecure = (server: grpc.Server, host: string, port: number): Promise<number> =>
  new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) => error === null ? resolve(bound) : reject(error))
  )
