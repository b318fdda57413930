// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {VouchDigest} from "../../src/bls/VouchDigest.sol";
import {IVouchProtocol} from "../../src/interfaces/IVouchProtocol.sol";
import {VouchProtocol} from "../../src/protocol/VouchProtocol.sol";
import {VouchUSD} from "../../src/tokens/VouchUSD.sol";
import {Vm} from "../utils/Test.sol";
import {BlsSigner} from "../utils/BlsSigner.sol";
import {MockStaking} from "./Mocks.sol";
import {ProtocolBase} from "./ProtocolBase.sol";

/// @title ProtocolHandler
/// @notice Random sequences of protocol actions on one 4-operator service: on-chain and x402 calls, front-run
/// authorizations, single and batch settlements with valid certificates, refunds, claims, sweeps and time jumps.
/// Tracks what the protocol should owe (a ghost ledger) so the invariant test can compare.
contract ProtocolHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    VouchProtocol internal immutable PROTOCOL;
    VouchUSD internal immutable TOKEN;
    MockStaking internal immutable STAKING;
    uint64 internal immutable SERVICE;
    uint256 internal immutable PAYER_KEY;
    address internal immutable PAYER;
    uint256[] internal secretKeys;

    /// @notice Ids of calls that are still open.
    uint256[] public openCalls;
    /// @notice Ghost: calls opened on-chain (`callJob`), the only ones that take a counter id.
    uint64 public ghostCounterCalls;
    /// @notice Ghost: x402 calls opened (ids derived from `(from, nonce)`, no counter id).
    uint256 public ghostPaidCalls;
    /// @notice Ghost: payment-token units sent to staking as delegator rewards.
    uint256 public ghostRewards;
    /// @notice Ghost: units that reached the protocol outside any call (front-run authorizations).
    uint256 public ghostSurplus;
    /// @notice Ghost: units swept to the treasury.
    uint256 public ghostSwept;
    /// @notice Accounts that may hold claimable balances.
    address[] public accounts;
    /// @notice Number of settled calls seen (sanity).
    uint256 public settledCount;
    uint256 internal nonceCounter;

    constructor(
        VouchProtocol protocol,
        VouchUSD token,
        MockStaking staking,
        uint64 service,
        uint256 payerKey,
        uint256[] memory sks,
        address[] memory parties
    ) {
        PROTOCOL = protocol;
        TOKEN = token;
        STAKING = staking;
        SERVICE = service;
        PAYER_KEY = payerKey;
        PAYER = vm.addr(payerKey);
        secretKeys = sks;
        accounts = parties;
    }

    /// @notice Opens an on-chain call.
    function callJob(bool job1) external {
        vm.prank(PAYER);
        openCalls.push(PROTOCOL.callJob(SERVICE, job1 ? 1 : 0, abi.encode(nonceCounter++)));
        ++ghostCounterCalls;
    }

    /// @notice Opens an x402 call, or front-runs the authorization straight to the token.
    function paidCall(bool job1, bool frontRun) external {
        VouchProtocol.PaidCall memory p;
        p.serviceId = SERVICE;
        p.jobIndex = job1 ? 1 : 0;
        p.inputsHash = keccak256(abi.encode(nonceCounter));
        p.from = PAYER;
        p.value = job1 ? 333_333 : 1_000_000;
        p.validBefore = block.timestamp + 300;
        p.nonce = keccak256(abi.encode("inv", nonceCounter++));
        bytes32 structHash = keccak256(
            abi.encode(
                TOKEN.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(),
                p.from,
                address(PROTOCOL),
                p.value,
                p.validAfter,
                p.validBefore,
                p.nonce
            )
        );
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(PAYER_KEY, keccak256(abi.encodePacked("\x19\x01", TOKEN.DOMAIN_SEPARATOR(), structHash)));
        p.signature = abi.encodePacked(r, s, v);
        if (frontRun) {
            TOKEN.transferWithAuthorization(
                p.from, address(PROTOCOL), p.value, p.validAfter, p.validBefore, p.nonce, p.signature
            );
            ghostSurplus += p.value;
            (bool ok,) = address(PROTOCOL).call(abi.encodeCall(VouchProtocol.openPaidCall, (p)));
            require(!ok, "front-run authorization opened a call");
        } else {
            // Tracked under the id derived from (serviceId, jobIndex, from, nonce), not the returned one: if the
            // protocol opened the call under another id, `invariant_BalanceMatchesLedger` finds no open call here.
            PROTOCOL.openPaidCall(p);
            openCalls.push(
                uint256(
                    keccak256(abi.encode(keccak256("vouch.v1.paid-call"), p.serviceId, p.jobIndex, p.from, p.nonce))
                )
            );
            ++ghostPaidCalls;
        }
    }

    /// @notice Settles one open call (if on time) with signers `bitmap` (slots 1..3 always reach the quorum).
    function settle(uint256 which, bool allFour) external {
        if (openCalls.length == 0) return;
        uint256 i = which % openCalls.length;
        uint256 callId = openCalls[i];
        IVouchProtocol.Call memory c = PROTOCOL.getCall(callId);
        if (block.timestamp > c.deadline) return;
        uint256 bitmap = allFour ? 0xF : 0xE;
        bytes32 resultHash = keccak256(abi.encode(callId));
        bytes memory sig = BlsSigner.signBitmap(
            secretKeys,
            bitmap,
            VouchDigest.resultDigest(block.chainid, address(PROTOCOL), SERVICE, callId, c.inputsHash, resultHash)
        );
        uint256 before = STAKING.totalRewards();
        PROTOCOL.settle(callId, resultHash, bitmap, sig);
        ghostRewards += STAKING.totalRewards() - before;
        _remove(i);
        ++settledCount;
    }

    /// @notice Settles every open, on-time call in one batch.
    function settleAll() external {
        uint256 n;
        uint256[] memory ids = new uint256[](openCalls.length);
        bytes32[] memory leaves = new bytes32[](openCalls.length);
        for (uint256 i; i < openCalls.length; ++i) {
            IVouchProtocol.Call memory c = PROTOCOL.getCall(openCalls[i]);
            if (block.timestamp > c.deadline) continue;
            ids[n] = openCalls[i];
            leaves[n] = VouchDigest.batchLeaf(openCalls[i], c.inputsHash, keccak256(abi.encode(openCalls[i])));
            ++n;
        }
        if (n == 0) return;
        uint256[] memory batch = new uint256[](n);
        bytes32[] memory results = new bytes32[](n);
        bytes32[] memory batchLeaves = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            batch[i] = ids[i];
            results[i] = keccak256(abi.encode(ids[i]));
            batchLeaves[i] = leaves[i];
        }
        bytes32 digest = VouchDigest.batchDigest(
            block.chainid, address(PROTOCOL), SERVICE, VouchDigest.batchRoot(batchLeaves), uint32(n)
        );
        uint256 before = STAKING.totalRewards();
        PROTOCOL.settleBatch(SERVICE, batch, results, 0xE, BlsSigner.signBitmap(secretKeys, 0xE, digest));
        ghostRewards += STAKING.totalRewards() - before;
        settledCount += n;
        for (uint256 i = openCalls.length; i > 0; --i) {
            if (PROTOCOL.getCall(openCalls[i - 1]).status == IVouchProtocol.CallStatus.Settled) _remove(i - 1);
        }
    }

    /// @notice Moves time forward.
    function warp(uint256 secondsForward) external {
        vm.warp(block.timestamp + (secondsForward % 2 hours));
    }

    /// @notice Refunds every open call past its deadline.
    function refundLate() external {
        for (uint256 i = openCalls.length; i > 0; --i) {
            if (block.timestamp > PROTOCOL.getCall(openCalls[i - 1]).deadline) {
                PROTOCOL.refund(openCalls[i - 1]);
                _remove(i - 1);
            }
        }
    }

    /// @notice An account claims its balance (if any).
    function claim(uint256 who) external {
        address account = accounts[who % accounts.length];
        if (PROTOCOL.claimable(account) == 0) return;
        vm.prank(account);
        PROTOCOL.claim();
    }

    /// @notice Sweeps the surplus (if any).
    function sweep() external {
        if (TOKEN.balanceOf(address(PROTOCOL)) <= PROTOCOL.accounted()) return;
        ghostSwept += PROTOCOL.sweepSurplus();
    }

    /// @notice Number of open calls tracked.
    function openCount() external view returns (uint256) {
        return openCalls.length;
    }

    /// @notice Number of tracked accounts.
    function accountCount() external view returns (uint256) {
        return accounts.length;
    }

    /// @dev Swap-and-pop.
    function _remove(uint256 i) private {
        openCalls[i] = openCalls[openCalls.length - 1];
        openCalls.pop();
    }
}

/// @title VouchProtocolInvariantTest
/// @notice Money invariants under random action sequences: the protocol's balance is exactly what it owes (escrow of
/// open calls + claimable balances) plus front-run surplus not yet swept; every open call is escrowed; settled and
/// refunded calls stay final; and nothing is created or lost overall.
contract VouchProtocolInvariantTest is ProtocolBase {
    ProtocolHandler internal handler;
    address[] internal parties;

    function setUp() public override {
        super.setUp();
        parties.push(payer);
        parties.push(developer);
        parties.push(treasury);
        for (uint256 i; i < 4; ++i) {
            parties.push(serviceOperators[i]);
        }
        handler = new ProtocolHandler(protocol, token, staking, serviceId, payerKey, serviceSecretKeys, parties);
    }

    /// @notice forge fuzzes only the handler.
    function targetContracts() external view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// @notice balance = accounted + unswept surplus, and accounted = escrow of open calls + Σ claimable.
    function invariant_BalanceMatchesLedger() external view {
        uint256 escrow;
        for (uint256 i; i < handler.openCount(); ++i) {
            IVouchProtocol.Call memory c = protocol.getCall(handler.openCalls(i));
            assertTrue(c.status == IVouchProtocol.CallStatus.Open, "tracked call open");
            escrow += c.payment;
        }
        uint256 claimableSum;
        for (uint256 i; i < handler.accountCount(); ++i) {
            claimableSum += protocol.claimable(handler.accounts(i));
        }
        assertEq(protocol.accounted(), escrow + claimableSum, "accounted = escrow + claimable");
        assertEq(
            token.balanceOf(address(protocol)),
            protocol.accounted() + handler.ghostSurplus() - handler.ghostSwept(),
            "balance = accounted + surplus"
        );
    }

    /// @notice The call counter counts on-chain calls only: x402 calls never take (or skip) a counter id.
    function invariant_CounterCountsOnlyOnChainCalls() external view {
        assertEq(protocol.callCount(), handler.ghostCounterCalls(), "callCount = calls opened with callJob");
    }

    /// @notice Conservation: every unit that left the payer is in the protocol, with staking, or paid out.
    function invariant_Conservation() external view {
        uint256 paidOut;
        for (uint256 i; i < handler.accountCount(); ++i) {
            address account = handler.accounts(i);
            if (account != payer) paidOut += token.balanceOf(account);
        }
        uint256 spent = 1_000_000e6 - token.balanceOf(payer);
        assertEq(
            spent,
            token.balanceOf(address(protocol)) + token.balanceOf(address(staking)) + paidOut,
            "nothing created or lost"
        );
        assertEq(token.balanceOf(address(staking)), handler.ghostRewards(), "staking got exactly the rewards");
    }
}
