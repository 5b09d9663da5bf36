"""DCE/RPC itself ([C706] 12-14, [MS-RPCE] 2-3): PDUs in, call and bind records out. Sans-IO.

Owns, in data-flow order:
- `wire`, `constants`: bounds-checked reads, UUIDs, the spec's numbers;
- connection-oriented: `probe` (is this stream DCE/RPC?), `stream` (framing by frag_length; its
  header test in C, `_framing`, where built),
  `pdu` (header and bodies, [C706] 12.6), `auth` (NTLMSSP names in verifiers), `association`
  (contexts, pairing, security contexts) with `co_bind` and `co_call` (their records);
- connectionless: `cl_pdu` (header and probe, [C706] 12.5), `cl_call` (a call and its fragments),
  `cl` (the tracker, [C706] 10);
- `decoding`: the seam through which both hand finished calls' stubs to an injected decoder;
- NDR and the endpoint mapper's grammar for the stub decoders: `ndr` (the bounded reader), `ndr_types`
  (declarative types, compiled once into readers), `ndr_dtyp` (RPC_SID, RPC_UNICODE_STRING), `epm`.

Must not import: `analyzer.stubs` (the decoders are injected through `decoding.StubDecoder`),
`smb`, the transports, the pipeline, the report layer, or anything doing I/O. It may import
`errors`, `limits`, `bounded`, `model` and `capture`-free helpers below it.
"""
