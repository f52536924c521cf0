/**
 * The part of ONNX's onnx.proto3 an inference graph of dense tensors needs, with the official
 * field numbers (github.com/onnx/onnx, onnx/onnx.proto3), encoded with protobufjs. Fields left
 * out (training info, sparse tensors, functions, ...) are simply absent from what we write.
 */
import protobuf from 'protobufjs';

const ONNX_SUBSET_PROTO = `
syntax = "proto3";
package onnx;

message AttributeProto {
  enum AttributeType {
    UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5;
    FLOATS = 6; INTS = 7; STRINGS = 8; TENSORS = 9; GRAPHS = 10;
  }
  string name = 1;
  string doc_string = 13;
  AttributeType type = 20;
  float f = 2;
  int64 i = 3;
  bytes s = 4;
  TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
}

message ValueInfoProto {
  string name = 1;
  TypeProto type = 2;
  string doc_string = 3;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  string name = 3;
  string op_type = 4;
  string domain = 7;
  repeated AttributeProto attribute = 5;
  string doc_string = 6;
}

message StringStringEntryProto {
  string key = 1;
  string value = 2;
}

message ModelProto {
  int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  string producer_name = 2;
  string producer_version = 3;
  string domain = 4;
  int64 model_version = 5;
  string doc_string = 6;
  GraphProto graph = 7;
  repeated StringStringEntryProto metadata_props = 14;
}

message GraphProto {
  repeated NodeProto node = 1;
  string name = 2;
  repeated TensorProto initializer = 5;
  string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
}

message TensorProto {
  enum DataType { UNDEFINED = 0; FLOAT = 1; UINT8 = 2; INT8 = 3; INT32 = 6; INT64 = 7; DOUBLE = 11; }
  repeated int64 dims = 1;
  int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated int64 int64_data = 7 [packed = true];
  string name = 8;
  string doc_string = 12;
  bytes raw_data = 9;
  repeated double double_data = 10 [packed = true];
  repeated StringStringEntryProto external_data = 13;
  int32 data_location = 14;
}

message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
    string denotation = 3;
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    int32 elem_type = 1;
    TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
  string denotation = 6;
}

message OperatorSetIdProto {
  string domain = 1;
  int64 version = 2;
}
`;

/** TensorProto.DataType.FLOAT, INT8, INT32 and INT64. */
export const ONNX_FLOAT = 1;
export const ONNX_INT8 = 3;
export const ONNX_INT32 = 6;
export const ONNX_INT64 = 7;

/** TensorProto.DataType.DOUBLE, read by the importer. */
export const ONNX_DOUBLE = 11;

/** AttributeProto.AttributeType values: those our nodes write, and those an imported graph may hold. */
export const ATTRIBUTE_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

export interface OnnxAttribute {
  name: string;
  /** Any AttributeType when decoded (graphs and string lists included); the importer refuses what it cannot read. */
  type: (typeof ATTRIBUTE_TYPE)[keyof typeof ATTRIBUTE_TYPE] | number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: OnnxTensor;
  floats?: number[];
  ints?: number[];
}

export interface OnnxNode {
  name: string;
  /** Operator set domain; absent for the standard ONNX operators. */
  domain?: string;
  op_type: string;
  input: string[];
  output: string[];
  attribute?: OnnxAttribute[];
}

export interface OnnxTensor {
  name: string;
  data_type: number;
  dims: number[];
  /** Little-endian element bytes. */
  raw_data?: Uint8Array;
  float_data?: number[];
  int32_data?: number[];
  int64_data?: number[];
  double_data?: number[];
  /** 1 (EXTERNAL): the values live in another file (models over 2 GB); the importer refuses these. */
  data_location?: number;
}

/** A dimension is a size or a symbolic name (a dynamic batch: 'N'). */
export type OnnxDimension = { dim_value: number } | { dim_param: string };

export interface OnnxValueInfo {
  name: string;
  doc_string?: string;
  /** A value without `shape` may have any shape (graph outputs added for calibration). */
  type: { tensor_type: { elem_type: number; shape?: { dim: OnnxDimension[] } } };
}

export interface OnnxGraph {
  name: string;
  doc_string?: string;
  node: OnnxNode[];
  initializer: OnnxTensor[];
  input: OnnxValueInfo[];
  output: OnnxValueInfo[];
  /** Shapes of intermediate values, when the exporter or a shape inference recorded them. */
  value_info?: OnnxValueInfo[];
}

export interface OnnxModel {
  ir_version: number;
  opset_import: { domain: string; version: number }[];
  producer_name: string;
  producer_version?: string;
  doc_string?: string;
  graph: OnnxGraph;
  metadata_props?: { key: string; value: string }[];
}

export const intsAttribute = (name: string, list: number[]): OnnxAttribute => ({
  name,
  type: ATTRIBUTE_TYPE.ints,
  ints: list,
});
export const intAttribute = (name: string, i: number): OnnxAttribute => ({ name, type: ATTRIBUTE_TYPE.int, i });

export function floatTensor(name: string, dims: number[], values: Float32Array): OnnxTensor {
  // raw_data is little-endian by definition, as are the typed arrays of every platform Node runs on.
  return {
    name,
    data_type: ONNX_FLOAT,
    dims,
    raw_data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  };
}

/** Int8 or int32 values (quantized weights, biases and zero points) as raw little-endian bytes; `dims` [] is a scalar. */
export function integerTensor(name: string, dims: number[], values: Int8Array | Int32Array): OnnxTensor {
  return {
    name,
    data_type: values instanceof Int8Array ? ONNX_INT8 : ONNX_INT32,
    dims,
    raw_data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  };
}

/** A 1-D int64 tensor: shapes, axes and indices that operators such as Reshape and Slice take as inputs. */
export function int64Tensor(name: string, values: number[]): OnnxTensor {
  return { name, data_type: ONNX_INT64, dims: [values.length], int64_data: values };
}

/** A float32 value's declaration; a string dimension is symbolic (any size). */
export function tensorInfo(name: string, dims: (number | string)[]): OnnxValueInfo {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: ONNX_FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

const modelProto = protobuf.parse(ONNX_SUBSET_PROTO, { keepCase: true }).root.lookupType('onnx.ModelProto');

export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  const problem = modelProto.verify(model);
  if (problem) throw new Error(`invalid ONNX model: ${problem}`);
  return modelProto.encode(modelProto.fromObject(model)).finish();
}

/** A float32 value of unknown shape. */
export function floatValueOfAnyShape(name: string): OnnxValueInfo {
  return { name, type: { tensor_type: { elem_type: ONNX_FLOAT } } };
}

/**
 * Decodes a model (int64 fields as numbers): one written by encodeOnnxModel, or any other ONNX
 * file, whose fields outside this subset are skipped.
 */
export function decodeOnnxModel(bytes: Uint8Array): OnnxModel {
  return modelProto.toObject(modelProto.decode(bytes), { longs: Number, defaults: false, arrays: true }) as OnnxModel;
}
