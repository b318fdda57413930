// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {KeyRegistry} from "../../src/KeyRegistry.sol";
import {VouchDigest} from "../../src/bls/VouchDigest.sol";
import {IVouchProtocol} from "../../src/interfaces/IVouchProtocol.sol";
import {VouchProtocol} from "../../src/protocol/VouchProtocol.sol";
import {VouchUSD} from "../../src/tokens/VouchUSD.sol";
import {VectorTest} from "../utils/Vectors.sol";
import {BlsSigner} from "../utils/BlsSigner.sol";
import {MockHooks, MockStaking} from "./Mocks.sol";

/// @title ProtocolBase
/// @notice Fixture of the protocol tests: the golden-vector keys registered in a KeyRegistry at the vectors' address
/// and chain id, Vouch USD as the EIP-3009 payment token, a staking test double, a deployed `VouchProtocol`, a blueprint
/// with two jobs and an active service of `N_OPERATORS` operators (slot i = `keys[i]`), and helpers that sign
/// certificates with the keys' secret keys (`BlsSigner`) and x402 authorizations with `vm.sign`.
abstract contract ProtocolBase is VectorTest {
    /// @dev Operators registered in setUp (keys[0..N_OPERATORS-1]).
    uint256 internal constant N_OPERATORS = 16;
    /// @dev Protocol fee of the fixture.
    uint16 internal constant PROTOCOL_FEE_BPS = 500;
    /// @dev Job 0: 1 vUSD, 10 minutes. Job 1: 0.333333 vUSD, 1 hour.
    uint128 internal constant PRICE0 = 1_000_000;
    uint128 internal constant PRICE1 = 333_333;
    uint32 internal constant DEADLINE0 = 600;
    uint32 internal constant DEADLINE1 = 3600;

    KeyRegistry internal registry;
    VouchUSD internal token;
    MockStaking internal staking;
    VouchProtocol internal protocol;
    MockHooks internal hooks;

    Key[] internal keys;
    uint256[] internal secretKeys;
    address internal treasury = address(0x7EA5);
    address internal developer = address(0xDE7);
    address internal serviceOwner = address(0x50B);
    uint256 internal payerKey = 0xA11CE;
    address internal payer;
    address internal stranger = address(0x5757);

    uint64 internal blueprintId;
    uint64 internal serviceId;
    /// @dev Operators of `serviceId` in slot order, and their secret keys.
    address[] internal serviceOperators;
    uint256[] internal serviceSecretKeys;

    /// @dev Nonce counter for x402 authorizations.
    uint256 internal nextNonce = 1;

    function setUp() public virtual {
        string memory json = _readVectors();
        registry = _deployRegistry(json);
        Key[] memory all = _keys(json);
        uint256[] memory sks = _secretKeys(json);
        for (uint256 i; i < N_OPERATORS; ++i) {
            keys.push(all[i]);
            secretKeys.push(sks[i]);
            vm.prank(all[i].operator);
            registry.registerKey(all[i].pubkey, all[i].pop);
        }

        token = new VouchUSD(address(this));
        staking = new MockStaking(IERC20(address(token)));
        protocol = new VouchProtocol(IERC20(address(token)), staking, registry, treasury, PROTOCOL_FEE_BPS);
        staking.setProtocol(address(protocol));
        hooks = new MockHooks();
        for (uint256 i; i < N_OPERATORS; ++i) {
            // Stakes 1000, 2000, … vUSD-equivalent units; commissions 0%, 5%, 10%, …
            staking.setOperator(all[i].operator, (i + 1) * 1000e18, uint16((i * 500) % 10_000));
        }

        payer = vm.addr(payerKey);
        token.mint(payer, 1_000_000e6);
        vm.prank(payer);
        token.approve(address(protocol), type(uint256).max);

        vm.warp(1_700_000_000);
        blueprintId = _createBlueprint(address(0));
        serviceId = _activeService(blueprintId, 4, true);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Fixture builders
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev The fixture's jobs.
    function _jobs() internal pure returns (IVouchProtocol.Job[] memory jobs) {
        jobs = new IVouchProtocol.Job[](2);
        jobs[0] =
            IVouchProtocol.Job({price: PRICE0, deadline: DEADLINE0, verification: IVouchProtocol.Verification.Exact});
        jobs[1] =
            IVouchProtocol.Job({price: PRICE1, deadline: DEADLINE1, verification: IVouchProtocol.Verification.Exact});
    }

    /// @dev The fixture's policy: 2/3 of stake and 2 signers, 10% developer fee.
    function _policy() internal pure returns (IVouchProtocol.Policy memory) {
        return IVouchProtocol.Policy({
            quorumBps: 6667,
            minSigners: 2,
            developerFeeBps: 1000,
            equivocationSlashBps: 10_000,
            deviationSlashBps: 5000,
            missedDeadlineSlashBps: 100,
            payerShareBps: 5000,
            reporterShareBps: 1000,
            disputeWindow: 1 days,
            jailAfterMisses: 3
        });
    }

    /// @dev Creates the fixture blueprint (owned by `developer`) with `hooks_`.
    function _createBlueprint(address hooks_) internal returns (uint64) {
        vm.prank(developer);
        return
            protocol.createBlueprint(
                "ipfs://blueprint", keccak256("metadata"), _jobs(), _policy(), address(0xA4B), hooks_
            );
    }

    /// @dev Operators keys[0..n-1].
    function _operators(uint256 n) internal view returns (address[] memory operators) {
        operators = new address[](n);
        for (uint256 i; i < n; ++i) {
            operators[i] = keys[i].operator;
        }
    }

    /// @dev Requests a service of keys[0..n-1] (owned by `serviceOwner`) and has every operator approve it; records
    /// its operators and secret keys for signing.
    function _activeService(uint64 blueprint, uint256 n, bool publicAccess) internal returns (uint64 id) {
        address[] memory operators = _operators(n);
        vm.prank(serviceOwner);
        id = protocol.requestService(
            blueprint, operators, uint64(block.timestamp + 30 days), publicAccess, new address[](0)
        );
        for (uint256 i; i < n; ++i) {
            vm.prank(operators[i]);
            protocol.approveService(id);
        }
        delete serviceOperators;
        delete serviceSecretKeys;
        for (uint256 i; i < n; ++i) {
            serviceOperators.push(operators[i]);
            serviceSecretKeys.push(secretKeys[i]);
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Calls and certificates
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev Opens a call of `job` on `service` paid by `payer`.
    function _call(uint64 service, uint8 job) internal returns (uint256 callId) {
        vm.prank(payer);
        callId = protocol.callJob(service, job, abi.encodePacked("inputs-", block.timestamp, job));
    }

    /// @dev Inputs hash of a call.
    function _inputsHash(uint256 callId) internal view returns (bytes32) {
        return protocol.getCall(callId).inputsHash;
    }

    /// @dev Result digest of `callId` on `service` (bound to the deployed protocol).
    function _resultDigest(uint64 service, uint256 callId, bytes32 resultHash) internal view returns (bytes32) {
        return
            VouchDigest.resultDigest(block.chainid, address(protocol), service, callId, _inputsHash(callId), resultHash);
    }

    /// @dev Aggregate signature of the `bitmap` signers of the current fixture service over `digest`.
    function _sign(uint256 bitmap, bytes32 digest) internal view returns (bytes memory) {
        return BlsSigner.signBitmap(serviceSecretKeys, bitmap, digest);
    }

    /// @dev Certificate signature for one call.
    function _certify(uint64 service, uint256 callId, bytes32 resultHash, uint256 bitmap)
        internal
        view
        returns (bytes memory)
    {
        return _sign(bitmap, _resultDigest(service, callId, resultHash));
    }

    /// @dev Batch digest over `callIds` / `resultHashes` in order.
    function _batchDigest(uint64 service, uint256[] memory callIds, bytes32[] memory resultHashes)
        internal
        view
        returns (bytes32)
    {
        bytes32[] memory leaves = new bytes32[](callIds.length);
        for (uint256 i; i < callIds.length; ++i) {
            leaves[i] = VouchDigest.batchLeaf(callIds[i], _inputsHash(callIds[i]), resultHashes[i]);
        }
        return VouchDigest.batchDigest(
            block.chainid, address(protocol), service, VouchDigest.batchRoot(leaves), uint32(callIds.length)
        );
    }

    /// @dev Opens and settles one call with signers `bitmap`.
    function _settleOne(uint64 service, uint8 job, uint256 bitmap) internal returns (uint256 callId) {
        callId = _call(service, job);
        bytes32 resultHash = keccak256(abi.encode("result", callId));
        protocol.settle(callId, resultHash, bitmap, _certify(service, callId, resultHash, bitmap));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // x402
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev EIP-712 digest of a `TransferWithAuthorization` on Vouch USD.
    function _authDigest(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) internal view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), from, to, value, validAfter, validBefore, nonce)
        );
        return keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
    }

    /// @dev Expected call id of the call of job `jobIndex` on `service` paid by the x402 authorization `(from, nonce)`,
    /// computed from its definition rather than through the protocol:
    /// `uint256(keccak256(abi.encode(keccak256("vouch.v1.paid-call"), uint64 service, uint8 jobIndex, from, nonce)))`.
    function _paidCallId(uint64 service, uint8 jobIndex, address from, bytes32 nonce) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(keccak256("vouch.v1.paid-call"), service, jobIndex, from, nonce)));
    }

    /// @dev A signed x402 payment by `payerKey` for job `job` of `service` (value = the job price, fresh nonce).
    function _paidCall(uint64 service, uint8 job) internal returns (VouchProtocol.PaidCall memory p) {
        return _paidCallFrom(payerKey, service, job, job == 0 ? PRICE0 : PRICE1);
    }

    /// @dev A signed x402 payment by `key` for `value`.
    function _paidCallFrom(uint256 key, uint64 service, uint8 job, uint256 value)
        internal
        returns (VouchProtocol.PaidCall memory p)
    {
        p.serviceId = service;
        p.jobIndex = job;
        p.inputsHash = keccak256(abi.encode("x402-inputs", nextNonce));
        p.from = vm.addr(key);
        p.value = value;
        p.validAfter = 0;
        p.validBefore = block.timestamp + 300;
        p.nonce = keccak256(abi.encode("nonce", nextNonce++));
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(key, _authDigest(p.from, address(protocol), p.value, p.validAfter, p.validBefore, p.nonce));
        p.signature = abi.encodePacked(r, s, v);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Invariants and small helpers
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev The protocol holds exactly what it accounts for (no surplus was injected in the test).
    function _assertSolvent() internal view {
        assertEq(token.balanceOf(address(protocol)), protocol.accounted(), "balance == accounted");
    }

    /// @dev Number of set bits.
    function _popcount(uint256 x) internal pure returns (uint256 count) {
        for (; x != 0; x &= x - 1) {
            ++count;
        }
    }

    /// @dev Bitmap of the first `n` slots.
    function _firstSlots(uint256 n) internal pure returns (uint256) {
        return n == 256 ? type(uint256).max : (uint256(1) << n) - 1;
    }
}
