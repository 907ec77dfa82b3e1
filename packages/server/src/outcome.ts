/** The one result shape of fallible calls: the data, or a spec error code with a message saying why. */
import type { ErrorCode } from '@parley/protocol';

export type FailureCode = Exclude<ErrorCode, typeof ErrorCode.Success>;
export type Failure = { code: FailureCode; message: string };
export type Outcome<T> = { code: 0; data: T } | Failure;

export const ok = <T>(data: T): Outcome<T> => ({ code: 0, data });
export const fail = (code: FailureCode, message: string): Failure => ({ code, message });
