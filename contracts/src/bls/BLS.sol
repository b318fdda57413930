// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Domain} from "./Domain.sol";
import {KeySet} from "./KeySet.sol";

/// @title BLS
/// @notice BLS12-381 min-pk signature checks on the EIP-2537 precompiles (Prague): RFC 9380 hash-to-G2, single
/// signature verification and aggregate verification against a key set selected by a signer bitmap.
/// @dev Scheme and encodings: docs/design/bls.md. Points use the EIP-2537 encodings: G1 = `x ‖ y` (128 bytes),
/// G2 = `x.c0 ‖ x.c1 ‖ y.c0 ‖ y.c1` (256 bytes), each field element 64 bytes (16 zero bytes ‖ 48-byte big-endian value
/// `< p`), infinity = all zeros.
///
/// Outcomes of the verification functions:
/// - `true`: the signature is valid.
/// - `false`: the input is refused (wrong length, infinity, empty or out-of-range bitmap, bad key set, or a point a
///   precompile rejects: off-curve, outside the subgroup, non-canonical field element).
/// - revert `BLSInsufficientGas`: the frame cannot forward a precompile's gas cap; nothing was decided.
/// - revert `BLSPrecompileFailed`: a precompile that cannot refuse these inputs (SHA-256, MODEXP, MAP_FP2_TO_G2, G2ADD
///   while hashing) failed or returned the wrong length, e.g. on a chain without EIP-2537 (before Prague those
///   addresses are empty accounts whose calls "succeed" with no output).
///
/// Every precompile call forwards a fixed gas cap. A failing precompile burns all the gas it was given, and a call
/// given less than it needs fails like an invalid input; so before each call the library checks that the whole cap
/// can be forwarded (EIP-150 keeps 1/64 back) and otherwise reverts. A valid certificate under a tight gas limit is
/// therefore never read as invalid. The caps are about 1.5–10× the Prague prices; a future repricing above a cap
/// would turn valid signatures into `false` (pairing, G1ADD) or a revert (hashing) and needs a new release.
library BLS {
    // ------------------------------------------------------------------------------------------------------------
    // Precompiles and gas caps
    // ------------------------------------------------------------------------------------------------------------

    /// @notice SHA-256 precompile.
    address internal constant SHA256 = address(0x02);
    /// @notice MODEXP precompile (EIP-198), used with exponent 1 to reduce 64-byte strings modulo p.
    address internal constant MODEXP = address(0x05);
    /// @notice EIP-2537 G1 addition (no subgroup check).
    address internal constant G1ADD = address(0x0b);
    /// @notice EIP-2537 G2 addition (no subgroup check).
    address internal constant G2ADD = address(0x0d);
    /// @notice EIP-2537 multi-pairing check (checks curve and subgroup membership of every input).
    address internal constant PAIRING_CHECK = address(0x0f);
    /// @notice EIP-2537 map from Fp2 to G2 (SSWU + isogeny + cofactor clearing).
    address internal constant MAP_FP2_TO_G2 = address(0x11);

    /// @notice Fixed part of the SHA-256 gas cap (Prague price: 60 + 12 per word).
    uint256 internal constant SHA256_GAS_CAP_BASE = 1000;
    /// @notice Per-32-byte-word part of the SHA-256 gas cap.
    uint256 internal constant SHA256_GAS_CAP_PER_WORD = 24;
    /// @notice Gas cap of one 64-byte reduction (Prague, EIP-2565: 200; Osaka, EIP-7883: 500).
    uint256 internal constant MODEXP_GAS_CAP = 5000;
    /// @notice Gas cap of MAP_FP2_TO_G2 (Prague: 23,800).
    uint256 internal constant MAP_FP2_TO_G2_GAS_CAP = 50_000;
    /// @notice Gas cap of G2ADD (Prague: 600).
    uint256 internal constant G2ADD_GAS_CAP = 5000;
    /// @notice Gas cap of G1ADD (Prague: 375).
    uint256 internal constant G1ADD_GAS_CAP = 2000;
    /// @notice Gas cap of a two-pair PAIRING_CHECK (Prague: 37,700 + 2·32,600 = 102,900).
    uint256 internal constant PAIRING_GAS_CAP = 150_000;
    /// @dev Gas spent between the `gas()` check and the STATICCALL (stack work + 100 for the warm call) with margin.
    uint256 private constant CALL_OVERHEAD = 1000;
    /// @dev `BLSInsufficientGas.selector`, for reverts from assembly (the tests match the revert data to the error).
    uint256 private constant INSUFFICIENT_GAS_SELECTOR = 0xb5add889;

    // ------------------------------------------------------------------------------------------------------------
    // Sizes and constants
    // ------------------------------------------------------------------------------------------------------------

    /// @notice Length of an EIP-2537 G1 point.
    uint256 internal constant G1_POINT_LENGTH = 128;
    /// @notice Length of an EIP-2537 G2 point.
    uint256 internal constant G2_POINT_LENGTH = 256;
    /// @notice RFC 9380 `len_in_bytes` for hash_to_field(count = 2, m = 2, L = 64).
    uint256 internal constant UNIFORM_LENGTH = 256;
    /// @notice Longest DST `expand_message_xmd` accepts (RFC 9380 §5.3.1).
    uint256 internal constant MAX_DST_LENGTH = 255;

    /// @notice Base field modulus p as a 64-byte EIP-2537 field element: high word (16 zero bytes ‖ p[0..16]).
    uint256 internal constant P_HI = 0x000000000000000000000000000000001a0111ea397fe69a4b1ba7b6434bacd7;
    /// @notice Base field modulus p: low word (p[16..48]).
    uint256 internal constant P_LO = 0x64774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab;

    /// @notice −g1 (negated G1 generator), x coordinate, high word. x is the generator's x.
    uint256 internal constant NEG_G1_X_HI = 0x0000000000000000000000000000000017f1d3a73197d7942695638c4fa9ac0f;
    /// @notice −g1, x coordinate, low word.
    uint256 internal constant NEG_G1_X_LO = 0xc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb;
    /// @notice −g1, y coordinate (p − y of the generator), high word.
    uint256 internal constant NEG_G1_Y_HI = 0x00000000000000000000000000000000114d1d6855d545a8aa7d76c8cf2e21f2;
    /// @notice −g1, y coordinate, low word.
    uint256 internal constant NEG_G1_Y_LO = 0x67816aef1db507c96655b9d5caac42364e6f38ba0ecb751bad54dcd6b939c2ca;

    // ------------------------------------------------------------------------------------------------------------
    // Errors
    // ------------------------------------------------------------------------------------------------------------

    /// @notice The remaining gas cannot cover a precompile's gas cap; retry with a higher gas limit.
    error BLSInsufficientGas();

    /// @notice A precompile that cannot refuse the library's inputs failed or returned the wrong length.
    /// @param precompile Address of the precompile.
    error BLSPrecompileFailed(address precompile);

    /// @notice The DST is longer than 255 bytes (RFC 9380 §5.3.1).
    /// @param length Length received.
    error BLSInvalidDSTLength(uint256 length);

    // ------------------------------------------------------------------------------------------------------------
    // Hash to curve (RFC 9380, BLS12381G2_XMD:SHA-256_SSWU_RO_)
    // ------------------------------------------------------------------------------------------------------------

    /// @notice RFC 9380 `hash_to_curve` to G2 of a 32-byte message.
    /// @param message The 32-byte message (a Vouch digest).
    /// @param dst Domain separation tag, at most 255 bytes.
    /// @return point The 256-byte EIP-2537 G2 point.
    function hashToG2(bytes32 message, bytes memory dst) internal view returns (bytes memory point) {
        return hashToG2(abi.encodePacked(message), dst);
    }

    /// @notice RFC 9380 `hash_to_curve` to G2 of an arbitrary message.
    /// @dev `u = hash_to_field(msg, 2)`; `Q0 = map(u[0])`, `Q1 = map(u[1])` (MAP_FP2_TO_G2 clears the cofactor);
    /// result `Q0 + Q1` (G2ADD).
    /// @param message Message bytes.
    /// @param dst Domain separation tag, at most 255 bytes.
    /// @return point The 256-byte EIP-2537 G2 point.
    function hashToG2(bytes memory message, bytes memory dst) internal view returns (bytes memory point) {
        bytes memory u = hashToField(message, dst);
        point = new bytes(G2_POINT_LENGTH);
        bool mapped;
        bool added;
        assembly ("memory-safe") {
            /// STATICCALL forwarding exactly `cap` gas; true iff it succeeded with `outLen` bytes of output.
            function staticcallCapped(addr, cap, inPtr, inLen, outPtr, outLen) -> ok {
                // EIP-150 forwards at most 63/64 of the gas left: make sure the whole cap is forwarded.
                if lt(gas(), add(add(cap, div(cap, 63)), CALL_OVERHEAD)) {
                    mstore(0x00, shl(224, INSUFFICIENT_GAS_SELECTOR))
                    revert(0x00, 0x04)
                }
                ok := staticcall(cap, addr, inPtr, inLen, outPtr, outLen)
                ok := and(ok, eq(returndatasize(), outLen))
            }

            // q = Q0 ‖ Q1 in scratch memory past the free memory pointer: exactly the G2ADD input.
            let q := mload(0x40)
            let uPtr := add(u, 0x20)
            // Q0 = MAP_FP2_TO_G2(u0), Q1 = MAP_FP2_TO_G2(u1) (precompile 0x11)
            mapped := staticcallCapped(0x11, MAP_FP2_TO_G2_GAS_CAP, uPtr, 128, q, 256)
            mapped := and(mapped, staticcallCapped(0x11, MAP_FP2_TO_G2_GAS_CAP, add(uPtr, 128), 128, add(q, 256), 256))
            // point = G2ADD(Q0, Q1) (precompile 0x0d)
            if mapped { added := staticcallCapped(0x0d, G2ADD_GAS_CAP, q, 512, add(point, 0x20), 256) }
        }
        if (!mapped) revert BLSPrecompileFailed(MAP_FP2_TO_G2);
        if (!added) revert BLSPrecompileFailed(G2ADD);
    }

    /// @notice RFC 9380 `hash_to_field(msg, 2)` over Fp2: two Fp2 elements as four 64-byte EIP-2537 field elements
    /// `u0.c0 ‖ u0.c1 ‖ u1.c0 ‖ u1.c1`.
    /// @dev Each 64-byte chunk of `expand_message_xmd(msg, DST, 256)` is reduced modulo p with MODEXP (exponent 1,
    /// 64-byte modulus, so the output is already the 64-byte EIP-2537 encoding). Reduced, never truncated.
    /// @param message Message bytes.
    /// @param dst Domain separation tag, at most 255 bytes.
    /// @return u The 256 bytes `u0.c0 ‖ u0.c1 ‖ u1.c0 ‖ u1.c1`.
    function hashToField(bytes memory message, bytes memory dst) internal view returns (bytes memory u) {
        bytes memory uniform = expandMessageXmd(message, dst);
        u = new bytes(UNIFORM_LENGTH);
        bool ok = true;
        assembly ("memory-safe") {
            // MODEXP input in scratch memory past the free memory pointer, 225 bytes:
            // len(B) = 64 ‖ len(E) = 1 ‖ len(M) = 64 ‖ B (64) ‖ E = 0x01 ‖ M = p (64 bytes: 16 zero bytes ‖ p)
            let input := mload(0x40)
            mstore(input, 64)
            mstore(add(input, 0x20), 1)
            mstore(add(input, 0x40), 64)
            mstore8(add(input, 0xa0), 1)
            mstore(add(input, 0xa1), P_HI)
            mstore(add(input, 0xc1), P_LO)
            // Gas needed before each call so that its whole cap is forwarded (EIP-150 keeps 1/64 back).
            let required := add(add(MODEXP_GAS_CAP, div(MODEXP_GAS_CAP, 63)), CALL_OVERHEAD)
            for { let i := 0 } lt(i, 4) { i := add(i, 1) } {
                // B = uniform[64·i .. 64·i + 64); output u[64·i .. 64·i + 64)
                let chunk := add(add(uniform, 0x20), shl(6, i))
                mstore(add(input, 0x60), mload(chunk))
                mstore(add(input, 0x80), mload(add(chunk, 0x20)))
                if lt(gas(), required) {
                    mstore(0x00, shl(224, INSUFFICIENT_GAS_SELECTOR))
                    revert(0x00, 0x04)
                }
                let success := staticcall(MODEXP_GAS_CAP, 0x05, input, 225, add(add(u, 0x20), shl(6, i)), 64)
                ok := and(ok, and(success, eq(returndatasize(), 64)))
            }
        }
        if (!ok) revert BLSPrecompileFailed(MODEXP);
    }

    /// @notice RFC 9380 `expand_message_xmd` with SHA-256 and `len_in_bytes = 256` (ell = 8).
    /// @dev `msg_prime = Z_pad(64) ‖ msg ‖ I2OSP(256, 2) ‖ I2OSP(0, 1) ‖ DST_prime`, `DST_prime = DST ‖ I2OSP(len, 1)`;
    /// `b0 = H(msg_prime)`, `b1 = H(b0 ‖ 0x01 ‖ DST_prime)`, `bi = H((b0 ⊕ b(i−1)) ‖ I2OSP(i, 1) ‖ DST_prime)`;
    /// output `b1 ‖ … ‖ b8`. One buffer serves all nine hashes: DST_prime sits at its end, and the 33 bytes before it
    /// are overwritten with the chaining value and counter once `b0` is known.
    /// @param message Message bytes.
    /// @param dst Domain separation tag, at most 255 bytes.
    /// @return uniform 256 pseudo-random bytes.
    function expandMessageXmd(bytes memory message, bytes memory dst) internal view returns (bytes memory uniform) {
        uint256 dstLength = dst.length;
        if (dstLength > MAX_DST_LENGTH) revert BLSInvalidDSTLength(dstLength);
        uniform = new bytes(UNIFORM_LENGTH);
        bool ok;
        assembly ("memory-safe") {
            /// SHA-256 of [ptr, ptr + len) into the 32 bytes at `out`, forwarding a capped amount of gas.
            function sha256Into(ptr, len, out) -> success {
                let cap := add(SHA256_GAS_CAP_BASE, mul(SHA256_GAS_CAP_PER_WORD, shr(5, add(len, 31))))
                // EIP-150 forwards at most 63/64 of the gas left: make sure the whole cap is forwarded.
                if lt(gas(), add(add(cap, div(cap, 63)), CALL_OVERHEAD)) {
                    mstore(0x00, shl(224, INSUFFICIENT_GAS_SELECTOR))
                    revert(0x00, 0x04)
                }
                success := staticcall(cap, 0x02, ptr, len, out, 32)
                success := and(success, eq(returndatasize(), 32))
            }

            // Scratch buffer past the free memory pointer (used only inside this block):
            // msg_prime = Z_pad (64 zero bytes) ‖ msg ‖ 0x01 0x00 (I2OSP(256, 2)) ‖ 0x00 (I2OSP(0, 1)) ‖ DST_prime
            let buffer := mload(0x40)
            let messageLength := mload(message)
            mstore(buffer, 0)
            mstore(add(buffer, 0x20), 0)
            mcopy(add(buffer, 64), add(message, 0x20), messageLength)
            let dstPrime := add(add(buffer, 67), messageLength)
            mstore8(sub(dstPrime, 3), 0x01)
            mstore8(sub(dstPrime, 2), 0x00)
            mstore8(sub(dstPrime, 1), 0x00)
            // DST_prime = DST ‖ I2OSP(len(DST), 1)
            mcopy(dstPrime, add(dst, 0x20), dstLength)
            mstore8(add(dstPrime, dstLength), dstLength)
            let dstPrimeLength := add(dstLength, 1)

            // b0 = H(msg_prime), parked in uniform[0..32) until b1 overwrites it.
            let out := add(uniform, 0x20)
            ok := sha256Into(buffer, add(add(67, messageLength), dstPrimeLength), out)
            let b0 := mload(out)

            // bi = H(chain ‖ I2OSP(i, 1) ‖ DST_prime), chain = b0 for i = 1 and b0 ⊕ b(i−1) after. The 33 bytes
            // before DST_prime (the tail of msg_prime, no longer needed) hold chain ‖ i.
            let chainPtr := sub(dstPrime, 33)
            let chain := b0
            for { let i := 1 } lt(i, 9) { i := add(i, 1) } {
                mstore(chainPtr, chain)
                mstore8(add(chainPtr, 32), i)
                let bi := add(out, shl(5, sub(i, 1)))
                ok := and(ok, sha256Into(chainPtr, add(33, dstPrimeLength), bi))
                chain := xor(b0, mload(bi))
            }
        }
        if (!ok) revert BLSPrecompileFailed(SHA256);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Verification
    // ------------------------------------------------------------------------------------------------------------

    /// @notice Verifies one BLS signature: `e(pk, H(m)) · e(−g1, σ) = 1` in one PAIRING_CHECK.
    /// @dev Refuses (returns false) wrong lengths, the point at infinity as key or signature, and any point the
    /// pairing precompile rejects; the pairing checks that `pubkey` and `signature` are on the curve and in the
    /// prime-order subgroups. Reverts only with `BLSInsufficientGas` / `BLSPrecompileFailed` (see the library notes).
    /// @param pubkey 128-byte EIP-2537 G1 public key.
    /// @param message 32-byte message.
    /// @param dst Domain separation tag of the message.
    /// @param signature 256-byte EIP-2537 G2 signature.
    /// @return True iff the signature is valid.
    function verify(bytes memory pubkey, bytes32 message, bytes memory dst, bytes memory signature)
        internal
        view
        returns (bool)
    {
        if (pubkey.length != G1_POINT_LENGTH || signature.length != G2_POINT_LENGTH) return false;
        if (_isZero(pubkey) || _isZero(signature)) return false;
        return _pairingCheck(pubkey, hashToG2(message, dst), signature);
    }

    /// @notice Sums the keys of `keySet` selected by `bitmap` (bit i selects slot i) with G1ADD.
    /// @dev Keys are read with EXTCODECOPY from the key-set data contract (layout in `KeySet`). G1ADD checks that each
    /// key is on the curve but not the subgroup: keys must have been subgroup-checked when registered.
    /// @param keySet Key-set data contract.
    /// @param bitmap Signer bitmap; must be non-zero with no bit at or above the set size.
    /// @return apk The 128-byte aggregate key, or empty bytes when refused.
    /// @return count Number of keys summed; 0 when refused (invalid key set, empty or out-of-range bitmap, or a key
    /// G1ADD rejects).
    function aggregateKeys(address keySet, uint256 bitmap) internal view returns (bytes memory apk, uint256 count) {
        (bool valid, uint256 size) = KeySet.trySize(keySet);
        if (!valid || !_bitmapFits(bitmap, size)) return ("", 0);
        return _sumKeys(keySet, bitmap);
    }

    /// @notice Verifies an aggregate signature over `message` (under `Domain.DST_RESULT`) by the keys of `keySet`
    /// selected by `bitmap`; the aggregate key is always rebuilt here, never supplied by the caller.
    /// @dev Returns false for: signature length ≠ 256, the all-zero (infinity) signature, bitmap = 0, a bit at or
    /// above the set size, a key set without code or with a bad layout, an aggregate key at infinity, and any point a
    /// precompile refuses. `keySet` must be a set of proof-of-possession-checked keys (see `KeyRegistry`).
    /// @param keySet Key-set data contract.
    /// @param bitmap Signer bitmap (bit i = slot i signed).
    /// @param message The signed 32-byte digest.
    /// @param signature 256-byte EIP-2537 G2 aggregate signature.
    /// @return True iff the aggregate signature is valid.
    function verifyAggregate(address keySet, uint256 bitmap, bytes32 message, bytes memory signature)
        internal
        view
        returns (bool)
    {
        if (signature.length != G2_POINT_LENGTH || _isZero(signature)) return false;
        (bool valid, uint256 size) = KeySet.trySize(keySet);
        if (!valid || !_bitmapFits(bitmap, size)) return false;
        // Hash first: it cannot fail on bad input, so a chain without EIP-2537 reverts here instead of reading false.
        bytes memory h = hashToG2(message, Domain.DST_RESULT);
        (bytes memory apk, uint256 count) = _sumKeys(keySet, bitmap);
        if (count == 0 || _isZero(apk)) return false;
        return _pairingCheck(apk, h, signature);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------------------------------------------------

    /// @dev Non-zero and no bit at or above `size` (for size 256, `>> 256` is 0).
    function _bitmapFits(uint256 bitmap, uint256 size) private pure returns (bool) {
        return bitmap != 0 && bitmap >> size == 0;
    }

    /// @dev Sums the selected keys; the bitmap is assumed to fit the set. `buffer = acc ‖ key` is the G1ADD input and
    /// its output overwrites `acc`. Returns ("", 0) if G1ADD refuses a key.
    function _sumKeys(address keySet, uint256 bitmap) private view returns (bytes memory apk, uint256 count) {
        bytes memory buffer = new bytes(2 * G1_POINT_LENGTH);
        bool ok = true;
        assembly ("memory-safe") {
            let acc := add(buffer, 0x20)
            let key := add(acc, 128)
            // Gas needed before each G1ADD so that its whole cap is forwarded (EIP-150 keeps 1/64 back).
            let required := add(add(G1ADD_GAS_CAP, div(G1ADD_GAS_CAP, 63)), CALL_OVERHEAD)
            // `i` is the slot of the lowest bit of `bitmap`; bitmap shifts right as slots are consumed.
            for { let i := 0 } bitmap {} {
                switch and(bitmap, 0xff)
                case 0 {
                    // Skip eight unset bits at once.
                    bitmap := shr(8, bitmap)
                    i := add(i, 8)
                }
                default {
                    if and(bitmap, 1) {
                        // Key i sits at code offset 1 + 128·i. The first key goes straight into acc.
                        let offset := add(1, shl(7, i))
                        switch count
                        case 0 { extcodecopy(keySet, acc, offset, 128) }
                        default {
                            extcodecopy(keySet, key, offset, 128)
                            if lt(gas(), required) {
                                mstore(0x00, shl(224, INSUFFICIENT_GAS_SELECTOR))
                                revert(0x00, 0x04)
                            }
                            // acc = G1ADD(acc, key) at 0x0b
                            let success := staticcall(G1ADD_GAS_CAP, 0x0b, acc, 256, acc, 128)
                            if iszero(and(success, eq(returndatasize(), 128))) {
                                ok := 0
                                break
                            }
                        }
                        count := add(count, 1)
                    }
                    bitmap := shr(1, bitmap)
                    i := add(i, 1)
                }
            }
            // apk is the first 128 bytes of the buffer.
            mstore(buffer, 128)
        }
        if (!ok) return ("", 0);
        apk = buffer;
    }

    /// @dev One PAIRING_CHECK of `e(g1Point, g2Point) · e(−g1, signature) = 1`. False if the precompile refuses any
    /// input (off-curve, outside the subgroup, non-canonical) or the product is not 1. Lengths are checked by callers.
    function _pairingCheck(bytes memory g1Point, bytes memory g2Point, bytes memory signature)
        private
        view
        returns (bool)
    {
        // Input: g1Point (128) ‖ g2Point (256) ‖ −g1 (128) ‖ signature (256) = 768 bytes.
        bytes memory input = new bytes(768);
        uint256 inPtr = _dataPtr(input);
        assembly ("memory-safe") {
            mcopy(inPtr, add(g1Point, 0x20), 128)
            mcopy(add(inPtr, 128), add(g2Point, 0x20), 256)
            mstore(add(inPtr, 384), NEG_G1_X_HI)
            mstore(add(inPtr, 416), NEG_G1_X_LO)
            mstore(add(inPtr, 448), NEG_G1_Y_HI)
            mstore(add(inPtr, 480), NEG_G1_Y_LO)
            mcopy(add(inPtr, 512), add(signature, 0x20), 256)
        }
        // The 32-byte output overwrites the start of the (already consumed) input.
        if (!_staticcall(PAIRING_CHECK, PAIRING_GAS_CAP, inPtr, 768, inPtr, 32)) return false;
        uint256 result;
        assembly ("memory-safe") {
            result := mload(inPtr)
        }
        return result == 1;
    }

    /// @dev STATICCALLs `precompile` with exactly `gasCap` gas. True iff the call succeeded and returned exactly
    /// `outLength` bytes (an empty account "succeeds" with no output). Reverts with `BLSInsufficientGas` unless the whole
    /// cap can be forwarded: EIP-150 forwards at most 63/64 of the gas left after the call's own cost, so require
    /// `gasCap + gasCap/63` plus the overhead up to the call. Then a failure can only mean the precompile refused.
    function _staticcall(
        address precompile,
        uint256 gasCap,
        uint256 inPtr,
        uint256 inLength,
        uint256 outPtr,
        uint256 outLength
    ) private view returns (bool ok) {
        assembly ("memory-safe") {
            if lt(gas(), add(add(gasCap, div(gasCap, 63)), CALL_OVERHEAD)) {
                mstore(0x00, shl(224, INSUFFICIENT_GAS_SELECTOR))
                revert(0x00, 0x04)
            }
            // Two statements: Yul evaluates arguments right to left, so `and(staticcall(..), eq(returndatasize(), ..))`
            // would read the return data size before the call.
            let success := staticcall(gasCap, precompile, inPtr, inLength, outPtr, outLength)
            ok := and(success, eq(returndatasize(), outLength))
        }
    }

    /// @dev True iff every byte of `data` is zero; `data.length` must be a multiple of 32 (128 or 256 here).
    function _isZero(bytes memory data) private pure returns (bool zero) {
        assembly ("memory-safe") {
            let acc := 0
            let ptr := add(data, 0x20)
            let end := add(ptr, mload(data))
            for {} lt(ptr, end) { ptr := add(ptr, 0x20) } { acc := or(acc, mload(ptr)) }
            zero := iszero(acc)
        }
    }

    /// @dev Memory address of the first byte of `data`.
    function _dataPtr(bytes memory data) private pure returns (uint256 ptr) {
        assembly ("memory-safe") {
            ptr := add(data, 0x20)
        }
    }
}
