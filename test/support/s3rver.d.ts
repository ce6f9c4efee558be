/** The little of s3rver 3.7's API that test/support/s3-server-child.ts uses (the package ships no types). */
declare module 's3rver' {
  interface S3rverOptions {
    address?: string;
    port?: number;
    directory: string;
    silent?: boolean;
    configureBuckets?: { name: string; configs: unknown[] }[];
  }
  export default class S3rver {
    constructor(options: S3rverOptions);
    run(): Promise<{ address: string; port: number }>;
    close(): Promise<void>;
  }
}

/** s3rver's file-system store: the test server patches its putObject (see s3-server-child.ts). */
declare module 's3rver/lib/stores/filesystem.js' {
  export default class FilesystemStore {
    getResourcePath(bucket: string, key: string | undefined, resource: string): string;
    putMetadata(bucket: string, key: string, metadata: unknown, md5?: string): Promise<void>;
    putObject(object: unknown): Promise<{ size: number; md5: string }>;
  }
}
