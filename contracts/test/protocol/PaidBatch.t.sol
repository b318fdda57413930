// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {VouchDigest} from "../../src/bls/VouchDigest.sol";
import {IVouchProtocol} from "../../src/interfaces/IVouchProtocol.sol";
import {VouchProtocol} from "../../src/protocol/VouchProtocol.sol";
import {VouchProtocolEvents} from "../../src/protocol/VouchProtocolEvents.sol";
import {VouchUSD} from "../../src/tokens/VouchUSD.sol";
import {BlsSigner} from "../utils/BlsSigner.sol";
import {Vm} from "../utils/Test.sol";
import {MockHooks} from "./Mocks.sol";
import {ProtocolBase} from "./ProtocolBase.sol";

/// @title PaidTree
/// @notice The tree `VouchDigest.batchRoot` builds, written again for the tests (so they do not check the library
/// against itself): sorted-pair keccak256, an odd last node moves up unchanged, the root of one leaf is that leaf.
library PaidTree {
    /// @notice Root over `leaves` (at least one).
    function root(bytes32[] memory leaves) internal pure returns (bytes32) {
        bytes32[] memory level = _copy(leaves);
        uint256 n = level.length;
        while (n > 1) {
            uint256 pairs = n / 2;
            for (uint256 i; i < pairs; ++i) {
                level[i] = _pair(level[2 * i], level[2 * i + 1]);
            }
            if (n % 2 == 1) level[pairs] = level[n - 1];
            n -= pairs;
        }
        return level[0];
    }

    /// @notice OpenZeppelin `MerkleProof` proof of `leaves[index]`: the sibling at each level, none where the node is
    /// the odd last one and moves up unchanged.
    function proof(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory out) {
        bytes32[] memory level = _copy(leaves);
        bytes32[] memory path = new bytes32[](64);
        uint256 depth;
        uint256 n = level.length;
        while (n > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < n) path[depth++] = level[sibling];
            uint256 pairs = n / 2;
            for (uint256 i; i < pairs; ++i) {
                level[i] = _pair(level[2 * i], level[2 * i + 1]);
            }
            if (n % 2 == 1) level[pairs] = level[n - 1];
            n -= pairs;
            index /= 2;
        }
        out = new bytes32[](depth);
        for (uint256 i; i < depth; ++i) {
            out[i] = path[i];
        }
    }

    /// @notice The call id of the call of job `jobIndex` on `serviceId` paid by the x402 authorization `(from, nonce)`,
    /// from its definition:
    /// `uint256(keccak256(abi.encode(keccak256("vouch.v1.paid-call"), uint64 serviceId, uint8 jobIndex, from, nonce)))`.
    function callId(uint64 serviceId, uint8 jobIndex, address from, bytes32 nonce) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(keccak256("vouch.v1.paid-call"), serviceId, jobIndex, from, nonce)));
    }

    /// @notice The record leaf of a paid-batch entry, from its definition:
    /// `keccak256(abi.encode(from, nonce, uint8 jobIndex, uint256 payment, inputsHash, resultHash))`.
    function record(
        address from,
        bytes32 nonce,
        uint8 jobIndex,
        uint256 payment,
        bytes32 inputsHash,
        bytes32 resultHash
    ) internal pure returns (bytes32) {
        return keccak256(abi.encode(from, nonce, jobIndex, payment, inputsHash, resultHash));
    }

    function _pair(bytes32 a, bytes32 b) private pure returns (bytes32) {
        return a < b ? keccak256(abi.encodePacked(a, b)) : keccak256(abi.encodePacked(b, a));
    }

    function _copy(bytes32[] memory leaves) private pure returns (bytes32[] memory level) {
        level = new bytes32[](leaves.length);
        for (uint256 i; i < leaves.length; ++i) {
            level[i] = leaves[i];
        }
    }
}

/// @title PaidBatchTest
/// @notice `VouchProtocol.settlePaidBatch`: x402 payments collected and settled under one aggregate certificate.
/// @dev Most tests use `svc`, a service of the fixture blueprint run by operators 0..2 (snapshot stakes 1000, 2000,
/// 3000; commissions 0 %, 5 %, 10 %; quorum 2/3 of stake and 2 signers), paid by three payers.
contract PaidBatchTest is ProtocolBase, VouchProtocolEvents {
    uint256 internal constant BPS = 10_000;
    uint256 internal constant KEY_B = 0xB0B;
    uint256 internal constant KEY_C = 0xC0C;
    uint256 internal constant ALL = 0x7;

    address internal payerB;
    address internal payerC;
    uint64 internal svc;

    /// @dev Expected money of a settlement, per operator slot of the service (zero for non-signers).
    struct Expected {
        uint256 collected;
        uint256 developerFee;
        uint256 protocolFee;
        uint256 dust;
        uint256[] commissions;
        uint256[] rewards;
    }

    function setUp() public override {
        super.setUp();
        payerB = vm.addr(KEY_B);
        payerC = vm.addr(KEY_C);
        token.mint(payerB, 1_000_000e6);
        token.mint(payerC, 1_000_000e6);
        svc = _activeService(blueprintId, 3, true);
    }

    // ===============================================================================================================
    // Helpers
    // ===============================================================================================================

    function _price(uint8 job) internal pure returns (uint256) {
        return job == 0 ? PRICE0 : PRICE1;
    }

    /// @dev A `TransferWithAuthorization` of `value` to the protocol, signed by `key` (65-byte r‖s‖v).
    function _authorize(uint256 key, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce)
        internal
        view
        returns (bytes memory)
    {
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(key, _authDigest(vm.addr(key), address(protocol), value, validAfter, validBefore, nonce));
        return abi.encodePacked(r, s, v);
    }

    /// @dev An entry paid by `key` for `job` at `value`, valid for five minutes, with fresh nonce, inputs and result.
    function _entryFor(uint256 key, uint8 job, uint256 value) internal returns (VouchProtocol.PaidResult memory e) {
        uint256 n = nextNonce++;
        e.from = vm.addr(key);
        e.jobIndex = job;
        e.validAfter = 0;
        e.validBefore = block.timestamp + 300;
        e.nonce = keccak256(abi.encode("paid-batch nonce", n));
        e.inputsHash = keccak256(abi.encode("paid-batch inputs", n));
        e.resultHash = keccak256(abi.encode("paid-batch result", n));
        e.signature = _authorize(key, value, e.validAfter, e.validBefore, e.nonce);
    }

    /// @dev An entry of the fixture blueprint (value = the job price).
    function _entry(uint256 key, uint8 job) internal returns (VouchProtocol.PaidResult memory) {
        return _entryFor(key, job, _price(job));
    }

    /// @dev A copy of `e` (memory structs are assigned by reference).
    function _copy(VouchProtocol.PaidResult memory e) internal pure returns (VouchProtocol.PaidResult memory) {
        return VouchProtocol.PaidResult({
            from: e.from,
            jobIndex: e.jobIndex,
            validAfter: e.validAfter,
            validBefore: e.validBefore,
            nonce: e.nonce,
            signature: e.signature,
            inputsHash: e.inputsHash,
            resultHash: e.resultHash
        });
    }

    /// @dev The fixture batch: 3 × job 0 and 2 × job 1 from three payers (payer: 0 and 1, B: 1 and 0, C: 0).
    function _fiveEntries() internal returns (VouchProtocol.PaidResult[] memory es) {
        es = new VouchProtocol.PaidResult[](5);
        es[0] = _entry(payerKey, 0);
        es[1] = _entry(KEY_B, 1);
        es[2] = _entry(payerKey, 1);
        es[3] = _entry(KEY_C, 0);
        es[4] = _entry(KEY_B, 0);
    }

    /// @dev The call id of entry `e` of a paid batch of `service` (bound to the service and the entry's job).
    function _entryCallId(uint64 service, VouchProtocol.PaidResult memory e) internal pure returns (uint256) {
        return PaidTree.callId(service, e.jobIndex, e.from, e.nonce);
    }

    /// @dev The batch digest the certificate of `es` on `service` signs.
    function _paidDigest(uint64 service, VouchProtocol.PaidResult[] memory es) internal view returns (bytes32) {
        bytes32[] memory leaves = new bytes32[](es.length);
        for (uint256 i; i < es.length; ++i) {
            leaves[i] = keccak256(abi.encode(_entryCallId(service, es[i]), es[i].inputsHash, es[i].resultHash));
        }
        // forge-lint: disable-next-line(unsafe-typecast)
        uint32 count = uint32(es.length); // test batches are small
        return VouchDigest.batchDigest(block.chainid, address(protocol), service, PaidTree.root(leaves), count);
    }

    /// @dev Aggregate certificate of the current fixture service's `bitmap` signers over the batch digest of `es`.
    function _certifyPaid(uint64 service, VouchProtocol.PaidResult[] memory es, uint256 bitmap)
        internal
        view
        returns (bytes memory)
    {
        return _sign(bitmap, _paidDigest(service, es));
    }

    /// @dev The record root of `es` where entry i collected `payments[i]` (0 = skipped).
    function _recordRoot(VouchProtocol.PaidResult[] memory es, uint256[] memory payments)
        internal
        pure
        returns (bytes32)
    {
        bytes32[] memory leaves = new bytes32[](es.length);
        for (uint256 i; i < es.length; ++i) {
            VouchProtocol.PaidResult memory e = es[i];
            leaves[i] = PaidTree.record(e.from, e.nonce, e.jobIndex, payments[i], e.inputsHash, e.resultHash);
        }
        return PaidTree.root(leaves);
    }

    /// @dev Each entry's job price.
    function _prices(VouchProtocol.PaidResult[] memory es) internal pure returns (uint256[] memory payments) {
        payments = new uint256[](es.length);
        for (uint256 i; i < es.length; ++i) {
            payments[i] = _price(es[i].jobIndex);
        }
    }

    /// @dev The EIP-3009 authorization of an entry as an `openPaidCall` payment of `service`.
    function _asPaidCall(uint64 service, VouchProtocol.PaidResult memory e)
        internal
        pure
        returns (VouchProtocol.PaidCall memory p)
    {
        p.serviceId = service;
        p.jobIndex = e.jobIndex;
        p.inputsHash = e.inputsHash;
        p.from = e.from;
        p.value = _price(e.jobIndex);
        p.validAfter = e.validAfter;
        p.validBefore = e.validBefore;
        p.nonce = e.nonce;
        p.signature = e.signature;
    }

    /// @dev Submits `e`'s authorization straight to the token (a front-run).
    function _frontRun(VouchProtocol.PaidResult memory e, uint256 value) internal {
        vm.prank(stranger);
        token.transferWithAuthorization(
            e.from, address(protocol), value, e.validAfter, e.validBefore, e.nonce, e.signature
        );
    }

    /// @dev What a settlement of `service` splits by: signer weights, commission rates and fees.
    struct Weights {
        uint256 bitmap;
        uint256[] weights; // min(snapshot stake, slashable stake now), per slot
        uint256[] commissionBps; // capped at 100 %, per slot
        uint256 signerStake;
        uint256 developerFeeBps;
        uint256 protocolFeeBps;
    }

    /// @dev The split of the non-skipped entries of `es` among the `bitmap` signers of `service`, computed from the
    /// docs' formula (weights = min(snapshot, slashable now), commissions capped at 100 %).
    function _expected(
        uint64 service,
        VouchProtocol.PaidResult[] memory es,
        bool[] memory skipped,
        uint256 bitmap,
        uint256 protocolFeeBps
    ) internal view returns (Expected memory x) {
        IVouchProtocol.Service memory s = protocol.getService(service);
        IVouchProtocol.Blueprint memory b = protocol.getBlueprint(s.blueprintId);
        Weights memory w = _weightsOf(s, bitmap);
        w.developerFeeBps = b.policy.developerFeeBps;
        w.protocolFeeBps = protocolFeeBps;
        x.commissions = new uint256[](s.operators.length);
        x.rewards = new uint256[](s.operators.length);
        for (uint256 j; j < es.length; ++j) {
            if (!skipped[j]) _addSplit(x, w, b.jobs[es[j].jobIndex].price);
        }
    }

    function _weightsOf(IVouchProtocol.Service memory s, uint256 bitmap) internal view returns (Weights memory w) {
        uint256 n = s.operators.length;
        w.bitmap = bitmap;
        w.weights = new uint256[](n);
        w.commissionBps = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            w.weights[i] = Math.min(s.stakes[i], staking.slashableStake(s.operators[i]));
            w.commissionBps[i] = Math.min(staking.commissionBps(s.operators[i]), BPS);
            if ((bitmap >> i) & 1 == 1) w.signerStake += w.weights[i];
        }
    }

    /// @dev Adds one payment of `price` to `x`.
    function _addSplit(Expected memory x, Weights memory w, uint256 price) internal pure {
        uint256 dev = price * w.developerFeeBps / BPS;
        uint256 prot = price * w.protocolFeeBps / BPS;
        uint256 rest = price - dev - prot;
        uint256 shared;
        for (uint256 i; i < w.weights.length; ++i) {
            if ((w.bitmap >> i) & 1 == 0) continue;
            uint256 share = rest * w.weights[i] / w.signerStake;
            uint256 commission = share * w.commissionBps[i] / BPS;
            x.commissions[i] += commission;
            x.rewards[i] += share - commission;
            shared += share;
        }
        x.collected += price;
        x.developerFee += dev;
        x.protocolFee += prot;
        x.dust += rest - shared;
    }

    /// @dev The fixture batch's split, by hand (docs/protocol.md "Money flows"). Job 0 (1,000,000): developer 100,000,
    /// protocol 50,000, rest 850,000 over stakes 1:2:3 = 141,666 / 283,333 / 425,000, dust 1; commissions 0 %, 5 %,
    /// 10 % = 0 / 14,166 / 42,500. Job 1 (333,333): developer 33,333, protocol 16,666, rest 283,334 = 47,222 / 94,444
    /// / 141,667, dust 1; commissions 0 / 4,722 / 14,166. The batch is 3 × job 0 + 2 × job 1 = 3,666,666.
    function _handSplit() internal pure returns (Expected memory x) {
        x.collected = 3_666_666;
        x.developerFee = 366_666;
        x.protocolFee = 183_332;
        x.dust = 5;
        x.commissions = new uint256[](3);
        x.commissions[1] = 51_942;
        x.commissions[2] = 155_832;
        x.rewards = new uint256[](3);
        x.rewards[0] = 519_442;
        x.rewards[1] = 986_945;
        x.rewards[2] = 1_402_502;
        require(
            x.developerFee + x.protocolFee + x.dust + _sum(x.commissions) + _sum(x.rewards) == x.collected, "hand split"
        );
    }

    function _assertSameSplit(Expected memory a, Expected memory b) internal pure {
        assertEq(a.collected, b.collected, "collected");
        assertEq(a.developerFee, b.developerFee, "developer fee");
        assertEq(a.protocolFee, b.protocolFee, "protocol fee");
        assertEq(a.dust, b.dust, "dust");
        for (uint256 k; k < a.commissions.length; ++k) {
            assertEq(a.commissions[k], b.commissions[k], "commission");
            assertEq(a.rewards[k], b.rewards[k], "rewards");
        }
    }

    function _expectPaidCallSettled(uint64 service, VouchProtocol.PaidResult memory e, uint256 batchId, uint256 payment)
        internal
    {
        vm.expectEmit(address(protocol));
        emit PaidCallSettled(
            _entryCallId(service, e), batchId, e.from, e.nonce, e.jobIndex, payment, e.inputsHash, e.resultHash
        );
    }

    /// @dev Expects `SignerPaid` per signer of `service` (slot order) and `Settlement` with the parts of `x`.
    function _expectCredits(uint64 service, uint256 bitmap, uint32 count, Expected memory x) internal {
        address[] memory ops = protocol.getService(service).operators;
        for (uint256 k; k < ops.length; ++k) {
            if ((bitmap >> k) & 1 == 0) continue;
            vm.expectEmit(address(protocol));
            emit SignerPaid(ops[k], service, x.commissions[k], x.rewards[k]);
        }
        vm.expectEmit(address(protocol));
        emit Settlement(
            service, bitmap, count, x.collected, developer, x.developerFee, x.protocolFee, x.dust, _sum(x.rewards)
        );
    }

    /// @dev Starting from nothing credited, the protocol credited exactly `x` for `service`: developer fee, treasury
    /// (protocol fee + dust), each operator's commission (claimable) and delegators' part (forwarded to staking).
    function _assertCredited(uint64 service, Expected memory x) internal view {
        address[] memory ops = protocol.getService(service).operators;
        assertEq(protocol.claimable(developer), x.developerFee, "developer fee");
        assertEq(protocol.claimable(treasury), x.protocolFee + x.dust, "treasury: protocol fee + dust");
        for (uint256 k; k < ops.length; ++k) {
            assertEq(protocol.claimable(ops[k]), x.commissions[k], "commission");
            assertEq(staking.rewardsOf(ops[k]), x.rewards[k], "delegator rewards");
        }
        uint256 rewardTotal = _sum(x.rewards);
        assertEq(staking.totalRewards(), rewardTotal, "rewards distributed");
        assertEq(token.balanceOf(address(staking)), rewardTotal, "rewards forwarded to staking");
        assertEq(
            protocol.accounted(),
            x.developerFee + x.protocolFee + x.dust + _sum(x.commissions),
            "accounted = claimables"
        );
        assertEq(protocol.accounted(), x.collected - rewardTotal, "accounted = collected - rewards");
        _assertSolvent();
    }

    /// @dev What the fee recipients of the current fixture service were credited so far (developer fee, treasury in
    /// `protocolFee`, each operator's commission and delegator rewards).
    function _credited() internal view returns (Expected memory c) {
        c.developerFee = protocol.claimable(developer);
        c.protocolFee = protocol.claimable(treasury);
        c.commissions = new uint256[](3);
        c.rewards = new uint256[](3);
        for (uint256 k; k < 3; ++k) {
            c.commissions[k] = protocol.claimable(serviceOperators[k]);
            c.rewards[k] = staking.rewardsOf(serviceOperators[k]);
        }
    }

    /// @dev Since `c` (`_credited`), the protocol credited exactly `x` more.
    function _assertCreditedSince(Expected memory c, Expected memory x) internal view {
        Expected memory now_ = _credited();
        assertEq(now_.developerFee - c.developerFee, x.developerFee, "developer fee");
        assertEq(now_.protocolFee - c.protocolFee, x.protocolFee + x.dust, "treasury: protocol fee + dust");
        for (uint256 k; k < 3; ++k) {
            assertEq(now_.commissions[k] - c.commissions[k], x.commissions[k], "commission");
            assertEq(now_.rewards[k] - c.rewards[k], x.rewards[k], "delegator rewards");
        }
    }

    /// @dev Sum of `xs`.
    function _sum(uint256[] memory xs) internal pure returns (uint256 total) {
        for (uint256 i; i < xs.length; ++i) {
            total += xs[i];
        }
    }

    /// @dev Token balances of the three payers.
    function _payerBalances() internal view returns (uint256[3] memory b) {
        b = [token.balanceOf(payer), token.balanceOf(payerB), token.balanceOf(payerC)];
    }

    /// @dev Nothing moved since `before` and no batch was recorded.
    function _assertNothingCharged(uint256[3] memory before) internal view {
        uint256[3] memory now_ = _payerBalances();
        for (uint256 i; i < 3; ++i) {
            assertEq(now_[i], before[i], "payer not charged");
        }
        assertEq(token.balanceOf(address(protocol)), 0, "protocol holds nothing");
        assertEq(protocol.accounted(), 0, "nothing accounted");
        assertEq(protocol.paidBatchCount(), 0, "no batch");
        assertEq(staking.totalRewards(), 0, "no rewards");
    }

    function _noSkips(uint256 n) internal pure returns (bool[] memory) {
        return new bool[](n);
    }

    /// @dev Number of logs of `protocol` with topic0 `selector`.
    function _countLogs(Vm.Log[] memory logs, bytes32 selector) internal view returns (uint256 count) {
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter == address(protocol) && logs[i].topics[0] == selector) ++count;
        }
    }

    // ===============================================================================================================
    // Success
    // ===============================================================================================================

    function test_SettlePaidBatch_CollectsSplitsAndRecords() external {
        VouchProtocol.PaidResult[] memory es = _fiveEntries();
        bytes memory signature = _certifyPaid(svc, es, ALL);
        uint256[3] memory before = _payerBalances();
        bytes32 recordRoot = _recordRoot(es, _prices(es));
        Expected memory x = _handSplit();
        _assertSameSplit(x, _expected(svc, es, _noSkips(5), ALL, PROTOCOL_FEE_BPS));

        vm.expectEmit(address(protocol));
        emit SignerBitmapRecorded(1, ALL);
        for (uint256 i; i < es.length; ++i) {
            _expectPaidCallSettled(svc, es[i], 1, _price(es[i].jobIndex));
        }
        vm.expectEmit(address(protocol));
        emit PaidBatchSettled(1, svc, ALL, 5, recordRoot);
        _expectCredits(svc, ALL, 5, x);
        vm.prank(stranger); // anyone may submit
        uint256 batchId = protocol.settlePaidBatch(svc, es, ALL, signature);

        assertEq(batchId, 1, "batch id");
        assertEq(protocol.paidBatchCount(), 1, "paidBatchCount");
        // Payers: exactly their prices.
        uint256[3] memory afterwards = _payerBalances();
        assertEq(before[0] - afterwards[0], PRICE0 + PRICE1, "payer A charged");
        assertEq(before[1] - afterwards[1], PRICE1 + PRICE0, "payer B charged");
        assertEq(before[2] - afterwards[2], PRICE0, "payer C charged");
        // Fees, commissions, delegator rewards, accounted.
        _assertCredited(svc, x);
        assertEq(staking.distributeCalls(), 3, "one distribution per signer");
        assertEq(token.balanceOf(address(protocol)), 757_777, "protocol keeps the claimables");
        // Nothing stored per call, no counter id.
        assertEq(protocol.callCount(), 0, "callCount unchanged");
        for (uint256 i; i < es.length; ++i) {
            uint256 callId = _entryCallId(svc, es[i]);
            assertEq(_paidCallId(svc, es[i].jobIndex, es[i].from, es[i].nonce), callId, "the fixture's definition");
            assertEq(protocol.paidCallId(svc, es[i].jobIndex, es[i].from, es[i].nonce), callId, "paidCallId view");
            assertTrue(protocol.getCall(callId).status == IVouchProtocol.CallStatus.None, "no call record");
            assertTrue(token.authorizationState(es[i].from, es[i].nonce), "authorization used");
        }
        // The batch record.
        IVouchProtocol.PaidBatch memory batch = protocol.getPaidBatch(batchId);
        assertEq(batch.serviceId, svc, "serviceId");
        assertEq(batch.settledAt, block.timestamp, "settledAt");
        assertEq(batch.count, 5, "count");
        assertEq(batch.signerBitmap, ALL, "signerBitmap");
        assertEq(batch.recordRoot, recordRoot, "recordRoot");
        assertEq(protocol.bitmapIdOf(ALL), 1, "bitmap recorded");
        // Unknown batches read as zero.
        IVouchProtocol.PaidBatch memory none = protocol.getPaidBatch(2);
        assertEq(none.count, 0, "unknown batch count");
        assertEq(none.recordRoot, bytes32(0), "unknown batch root");
        assertEq(none.signerBitmap, 0, "unknown batch bitmap");
        // Everyone can claim what was credited.
        vm.prank(serviceOperators[2]);
        assertEq(protocol.claim(), x.commissions[2], "operator claims");
        vm.prank(developer);
        assertEq(protocol.claim(), x.developerFee, "developer claims");
        vm.prank(treasury);
        assertEq(protocol.claim(), x.protocolFee + x.dust, "treasury claims");
        assertEq(token.balanceOf(treasury), x.protocolFee + x.dust, "treasury received");
        _assertSolvent();
    }

    function test_SettlePaidBatch_NonSignersEarnNothing() external {
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](2);
        es[0] = _entry(payerKey, 0);
        es[1] = _entry(KEY_C, 1);
        uint256 bitmap = 0x6; // slots 1, 2: 5000 of 6000
        Expected memory x = _expected(svc, es, _noSkips(2), bitmap, PROTOCOL_FEE_BPS);
        protocol.settlePaidBatch(svc, es, bitmap, _certifyPaid(svc, es, bitmap));
        assertEq(protocol.claimable(serviceOperators[0]), 0, "non-signer commission");
        assertEq(staking.rewardsOf(serviceOperators[0]), 0, "non-signer rewards");
        // rest = 850,000 + 283,334 split 2:3.
        assertEq(x.commissions[1] + x.rewards[1], uint256(340_000 + 113_333), "slot 1 share");
        for (uint256 k = 1; k < 3; ++k) {
            assertEq(protocol.claimable(serviceOperators[k]), x.commissions[k], "commission");
            assertEq(staking.rewardsOf(serviceOperators[k]), x.rewards[k], "rewards");
        }
        assertEq(protocol.getPaidBatch(1).signerBitmap, bitmap, "bitmap");
        _assertSolvent();
    }

    // ===============================================================================================================
    // Idempotence: used authorizations are skipped
    // ===============================================================================================================

    /// @dev Every authorization of a resubmitted batch is used, so there is nothing to collect: the batch reverts
    /// `NothingToCollect(count)` (a submitter treats it as success), records nothing, takes no batch id and moves no
    /// balance.
    function test_SettlePaidBatch_ResubmissionRevertsNothingToCollect() external {
        VouchProtocol.PaidResult[] memory es = _fiveEntries();
        bytes memory signature = _certifyPaid(svc, es, ALL);
        assertEq(protocol.settlePaidBatch(svc, es, ALL, signature), 1, "first batch id");

        uint256[3] memory before = _payerBalances();
        uint256 protocolBalance = token.balanceOf(address(protocol));
        uint256 accounted = protocol.accounted();
        uint256 stakingBalance = token.balanceOf(address(staking));
        uint256 distributions = staking.distributeCalls();
        uint256[3] memory claimables =
            [protocol.claimable(developer), protocol.claimable(treasury), protocol.claimable(serviceOperators[2])];

        vm.expectRevert(abi.encodeWithSelector(NothingToCollect.selector, 5));
        vm.prank(stranger); // anyone may replay it: the certificate is public
        protocol.settlePaidBatch(svc, es, ALL, signature);
        // Another certificate over the same entries (other signers, a new bitmap) settles nothing either, and the
        // bitmap is not recorded.
        bytes memory other = _certifyPaid(svc, es, 0x6);
        vm.expectRevert(abi.encodeWithSelector(NothingToCollect.selector, 5));
        protocol.settlePaidBatch(svc, es, 0x6, other);
        assertEq(protocol.bitmapIdOf(0x6), 0, "no bitmap recorded");
        // A subset of the used entries in another order: the same.
        VouchProtocol.PaidResult[] memory two = new VouchProtocol.PaidResult[](2);
        (two[0], two[1]) = (es[3], es[1]);
        other = _certifyPaid(svc, two, ALL);
        vm.expectRevert(abi.encodeWithSelector(NothingToCollect.selector, 2));
        protocol.settlePaidBatch(svc, two, ALL, other);
        // With nothing to collect the certificate is not even checked (nothing would be done with it).
        vm.expectRevert(abi.encodeWithSelector(NothingToCollect.selector, 5));
        protocol.settlePaidBatch(svc, es, ALL, new bytes(256));

        uint256[3] memory afterwards = _payerBalances();
        for (uint256 i; i < 3; ++i) {
            assertEq(afterwards[i], before[i], "nobody charged twice");
        }
        assertEq(token.balanceOf(address(protocol)), protocolBalance, "protocol balance");
        assertEq(protocol.accounted(), accounted, "accounted");
        assertEq(token.balanceOf(address(staking)), stakingBalance, "staking balance");
        assertEq(staking.distributeCalls(), distributions, "no distribution");
        assertEq(protocol.claimable(developer), claimables[0], "developer paid once");
        assertEq(protocol.claimable(treasury), claimables[1], "treasury paid once");
        assertEq(protocol.claimable(serviceOperators[2]), claimables[2], "signer paid once");
        assertEq(protocol.paidBatchCount(), 1, "no batch id consumed");
        assertEq(protocol.getPaidBatch(2).count, 0, "no batch recorded");
        assertEq(protocol.getPaidBatch(2).recordRoot, bytes32(0), "no record root");
        assertEq(protocol.getPaidBatch(1).recordRoot, _recordRoot(es, _prices(es)), "first batch unchanged");
        _assertSolvent();

        // The next batch with something to collect takes the next id.
        VouchProtocol.PaidResult[] memory next = new VouchProtocol.PaidResult[](1);
        next[0] = _entry(payerKey, 0);
        assertEq(protocol.settlePaidBatch(svc, next, ALL, _certifyPaid(svc, next, ALL)), 2, "next batch id");
    }

    /// @dev A batch mixing used authorizations (an earlier batch's entries) with fresh ones settles the fresh ones:
    /// the used ones are skipped (certified, recorded with payment 0, not collected or paid), and the `Settlement`
    /// counts and splits the collected entries only.
    function test_SettlePaidBatch_MixedUsedAndFreshSettlesTheFresh() external {
        VouchProtocol.PaidResult[] memory first = new VouchProtocol.PaidResult[](2);
        first[0] = _entry(payerKey, 0);
        first[1] = _entry(KEY_B, 1);
        protocol.settlePaidBatch(svc, first, ALL, _certifyPaid(svc, first, ALL));

        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](4);
        es[0] = first[1]; // used
        es[1] = _entry(KEY_C, 0);
        es[2] = first[0]; // used
        es[3] = _entry(payerKey, 1);
        bytes memory signature = _certifyPaid(svc, es, ALL);
        bool[] memory skipped = new bool[](4);
        (skipped[0], skipped[2]) = (true, true);
        Expected memory x = _expected(svc, es, skipped, ALL, PROTOCOL_FEE_BPS);
        assertEq(x.collected, uint256(PRICE0) + PRICE1, "two entries to collect");
        uint256[] memory payments = new uint256[](4);
        (payments[1], payments[3]) = (PRICE0, PRICE1);
        bytes32 recordRoot = _recordRoot(es, payments);

        uint256[3] memory before = _payerBalances();
        Expected memory credited = _credited();

        vm.expectEmit(address(protocol));
        emit PaidCallSkipped(payerB, es[0].nonce, 0);
        _expectPaidCallSettled(svc, es[1], 2, PRICE0);
        vm.expectEmit(address(protocol));
        emit PaidCallSkipped(payer, es[2].nonce, 0);
        _expectPaidCallSettled(svc, es[3], 2, PRICE1);
        vm.expectEmit(address(protocol));
        emit PaidBatchSettled(2, svc, ALL, 4, recordRoot);
        _expectCredits(svc, ALL, 2, x); // `Settlement.count` = collected entries
        vm.recordLogs();
        assertEq(protocol.settlePaidBatch(svc, es, ALL, signature), 2, "batch id");
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(_countLogs(logs, PaidCallSettled.selector), 2, "two settled");
        assertEq(_countLogs(logs, PaidCallSkipped.selector), 2, "two skipped");

        uint256[3] memory afterwards = _payerBalances();
        assertEq(before[0] - afterwards[0], PRICE1, "A charged for its fresh entry only");
        assertEq(afterwards[1], before[1], "B not charged again");
        assertEq(before[2] - afterwards[2], PRICE0, "C charged");
        _assertCreditedSince(credited, x);
        assertEq(protocol.getPaidBatch(2).count, 4, "every entry is in the record");
        assertEq(protocol.getPaidBatch(2).recordRoot, recordRoot, "skipped entries recorded with payment 0");
        assertEq(protocol.getPaidBatch(1).recordRoot, _recordRoot(first, _prices(first)), "first batch unchanged");
        assertEq(protocol.paidBatchCount(), 2, "paidBatchCount");
        _assertSolvent();
    }

    /// @dev A skipped entry is not checked at all: its service may have expired or been terminated since, its job
    /// vetoed, its payer refused or its job index made up. Such an entry neither blocks a batch nor turns a
    /// resubmission into anything but `NothingToCollect`; fresh entries are still checked.
    function test_SettlePaidBatch_SkippedEntriesAreNotChecked() external {
        uint64 bp = _createBlueprint(address(hooks));
        uint64 id = _activeService(bp, 3, true);
        VouchProtocol.PaidResult[] memory first = new VouchProtocol.PaidResult[](2);
        first[0] = _entry(payerKey, 1);
        first[1] = _entry(KEY_B, 0);
        bytes memory firstSignature = _certifyPaid(id, first, ALL);
        protocol.settlePaidBatch(id, first, ALL, firstSignature);

        // Job 1 is vetoed now, and payer B refused.
        hooks.setDeniedJob(1, true);
        hooks.setDenied(address(0), payerB);
        VouchProtocol.PaidResult[] memory vetoed = new VouchProtocol.PaidResult[](1);
        vetoed[0] = _entry(KEY_C, 1);
        bytes memory signature = _certifyPaid(id, vetoed, ALL);
        vm.expectRevert(abi.encodeWithSelector(JobCallRefused.selector, id, 1, payerC));
        protocol.settlePaidBatch(id, vetoed, ALL, signature);
        VouchProtocol.PaidResult[] memory refused = new VouchProtocol.PaidResult[](1);
        refused[0] = _entry(KEY_B, 0);
        signature = _certifyPaid(id, refused, ALL);
        vm.expectRevert(abi.encodeWithSelector(JobCallRefused.selector, id, 0, payerB));
        protocol.settlePaidBatch(id, refused, ALL, signature);

        // The used entries of both kinds, plus one relabelled to a job that does not exist, do not block fresh ones.
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](4);
        es[0] = first[0]; // job 1, vetoed now
        es[1] = _entry(KEY_C, 0);
        es[2] = first[1]; // payer B, refused now
        es[3] = _copy(first[0]);
        es[3].jobIndex = 9; // no such job
        uint256 before = token.balanceOf(payerC);
        signature = _certifyPaid(id, es, ALL);
        vm.expectEmit(address(protocol));
        emit PaidCallSkipped(payer, es[0].nonce, 0);
        _expectPaidCallSettled(id, es[1], 2, PRICE0);
        vm.expectEmit(address(protocol));
        emit PaidCallSkipped(payerB, es[2].nonce, 0);
        vm.expectEmit(address(protocol));
        emit PaidCallSkipped(payer, es[3].nonce, 0);
        assertEq(protocol.settlePaidBatch(id, es, ALL, signature), 2, "settled");
        assertEq(before - token.balanceOf(payerC), PRICE0, "the fresh entry collected");
        assertEq(hooks.resultCount(), 3, "only collected entries announced");

        // Terminated: a resubmission has nothing to collect; a fresh entry is refused.
        vm.prank(serviceOwner);
        protocol.terminateService(id);
        vm.expectRevert(abi.encodeWithSelector(NothingToCollect.selector, 2));
        protocol.settlePaidBatch(id, first, ALL, firstSignature);
        es[1] = _entry(KEY_C, 0);
        signature = _certifyPaid(id, es, ALL);
        vm.expectRevert(abi.encodeWithSelector(ServiceNotActive.selector, id, IVouchProtocol.ServiceStatus.Terminated));
        protocol.settlePaidBatch(id, es, ALL, signature);

        // Expired: the same.
        VouchProtocol.PaidResult[] memory onSvc = _fiveEntries();
        bytes memory svcSignature = _certifyPaid(svc, onSvc, ALL);
        protocol.settlePaidBatch(svc, onSvc, ALL, svcSignature);
        uint64 expiry = protocol.getService(svc).expiry;
        vm.warp(expiry + 1);
        vm.expectRevert(abi.encodeWithSelector(NothingToCollect.selector, 5));
        protocol.settlePaidBatch(svc, onSvc, ALL, svcSignature);
        onSvc[2] = _entry(payerKey, 1);
        signature = _certifyPaid(svc, onSvc, ALL);
        vm.expectRevert(abi.encodeWithSelector(ServiceExpired.selector, svc, expiry));
        protocol.settlePaidBatch(svc, onSvc, ALL, signature);
        assertEq(protocol.paidBatchCount(), 3, "three batches settled");
        _assertSolvent();
    }

    function test_SettlePaidBatch_FrontRunEntryIsSkippedAndBecomesSurplus() external {
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](3);
        es[0] = _entry(payerKey, 0);
        es[1] = _entry(KEY_B, 1);
        es[2] = _entry(KEY_C, 0);
        bytes memory signature = _certifyPaid(svc, es, ALL);
        uint256[3] memory before = _payerBalances();
        _frontRun(es[1], PRICE1); // straight to the token
        assertEq(token.balanceOf(address(protocol)), PRICE1, "funds arrived");
        assertEq(protocol.accounted(), 0, "not credited");

        bool[] memory skipped = new bool[](3);
        skipped[1] = true;
        Expected memory x = _expected(svc, es, skipped, ALL, PROTOCOL_FEE_BPS);
        uint256[] memory payments = _prices(es);
        payments[1] = 0;

        vm.expectEmit(address(protocol));
        emit PaidCallSettled(
            _entryCallId(svc, es[0]), 1, payer, es[0].nonce, 0, PRICE0, es[0].inputsHash, es[0].resultHash
        );
        vm.expectEmit(address(protocol));
        emit PaidCallSkipped(payerB, es[1].nonce, 0);
        vm.expectEmit(address(protocol));
        emit PaidCallSettled(
            _entryCallId(svc, es[2]), 1, payerC, es[2].nonce, 0, PRICE0, es[2].inputsHash, es[2].resultHash
        );
        vm.expectEmit(address(protocol));
        emit PaidBatchSettled(1, svc, ALL, 3, _recordRoot(es, payments));
        protocol.settlePaidBatch(svc, es, ALL, signature);

        uint256[3] memory afterwards = _payerBalances();
        assertEq(before[0] - afterwards[0], PRICE0, "A charged");
        assertEq(before[1] - afterwards[1], PRICE1, "B charged once (by the front-run)");
        assertEq(before[2] - afterwards[2], PRICE0, "C charged");
        assertEq(x.collected, 2 * PRICE0, "only two entries collected");
        assertEq(protocol.claimable(developer), x.developerFee, "developer");
        assertEq(protocol.claimable(treasury), x.protocolFee + x.dust, "treasury");
        assertEq(staking.totalRewards(), _sum(x.rewards), "rewards");
        assertEq(protocol.accounted(), x.collected - _sum(x.rewards), "the front-run payment is not accounted");
        assertEq(token.balanceOf(address(protocol)), protocol.accounted() + PRICE1, "surplus");

        vm.expectEmit(address(protocol));
        emit SurplusSwept(treasury, PRICE1);
        vm.prank(stranger);
        assertEq(protocol.sweepSurplus(), PRICE1, "surplus swept");
        assertEq(token.balanceOf(treasury), PRICE1, "treasury received the surplus");
        _assertSolvent();
    }

    function test_SettlePaidBatch_SkipsAuthorizationOpenedWithOpenPaidCall() external {
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](2);
        es[0] = _entry(payerKey, 1);
        es[1] = _entry(KEY_B, 0);
        bytes memory signature = _certifyPaid(svc, es, ALL);
        uint256 openedId = protocol.openPaidCall(_asPaidCall(svc, es[0]));
        assertEq(openedId, _entryCallId(svc, es[0]), "same derived id");
        uint256[3] memory before = _payerBalances();

        vm.expectEmit(address(protocol));
        emit PaidCallSkipped(payer, es[0].nonce, openedId);
        vm.expectEmit(address(protocol));
        emit PaidCallSettled(
            _entryCallId(svc, es[1]), 1, payerB, es[1].nonce, 0, PRICE0, es[1].inputsHash, es[1].resultHash
        );
        protocol.settlePaidBatch(svc, es, ALL, signature);

        uint256[3] memory afterwards = _payerBalances();
        assertEq(afterwards[0], before[0], "the opened call's payer is not charged again");
        assertEq(before[1] - afterwards[1], PRICE0, "B charged");
        // The opened call keeps its escrow and stays open.
        IVouchProtocol.Call memory c = protocol.getCall(openedId);
        assertTrue(c.status == IVouchProtocol.CallStatus.Open, "still open");
        assertEq(c.payment, PRICE1, "escrow");
        bool[] memory skipped = new bool[](2);
        skipped[0] = true;
        Expected memory x = _expected(svc, es, skipped, ALL, PROTOCOL_FEE_BPS);
        assertEq(protocol.accounted(), PRICE1 + x.collected - _sum(x.rewards), "escrow + credits");
        uint256[] memory payments = new uint256[](2);
        payments[1] = PRICE0;
        assertEq(protocol.getPaidBatch(1).recordRoot, _recordRoot(es, payments), "record root");
        _assertSolvent();
        // It still refunds normally after its deadline.
        vm.warp(c.deadline + 1);
        protocol.refund(openedId);
        assertEq(protocol.claimable(payer), PRICE1, "refund claimable");
        _assertSolvent();
    }

    // ===============================================================================================================
    // Reverts
    // ===============================================================================================================

    function test_RevertWhen_BatchEmpty() external {
        vm.expectRevert(abi.encodeWithSelector(InvalidBatchSize.selector, 0));
        protocol.settlePaidBatch(svc, new VouchProtocol.PaidResult[](0), ALL, new bytes(256));
    }

    function test_RevertWhen_BatchTooLarge() external {
        uint256 size = protocol.MAX_BATCH_SIZE() + 1;
        vm.expectRevert(abi.encodeWithSelector(InvalidBatchSize.selector, size));
        protocol.settlePaidBatch(svc, new VouchProtocol.PaidResult[](size), ALL, new bytes(256));
    }

    function test_RevertWhen_ServiceNotActive() external {
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](1);
        es[0] = _entry(payerKey, 0);
        bytes memory signature = _certifyPaid(svc, es, ALL);
        uint256[3] memory before = _payerBalances();
        vm.prank(serviceOwner);
        protocol.terminateService(svc);
        vm.expectRevert(abi.encodeWithSelector(ServiceNotActive.selector, svc, IVouchProtocol.ServiceStatus.Terminated));
        protocol.settlePaidBatch(svc, es, ALL, signature);
        // An unknown service has no key set: not active (before any bitmap check).
        vm.expectRevert(abi.encodeWithSelector(ServiceNotActive.selector, 99, IVouchProtocol.ServiceStatus.None));
        protocol.settlePaidBatch(99, es, ALL, signature);
        _assertNothingCharged(before);
    }

    function test_RevertWhen_ServiceOnlyRequested() external {
        // Not approved yet: no key set and no stake snapshot. `_quorum` refuses it before reading the missing
        // snapshot or checking any entry.
        vm.prank(serviceOwner);
        uint64 requested = protocol.requestService(
            blueprintId, _operators(3), uint64(block.timestamp + 1 days), true, new address[](0)
        );
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](1);
        es[0] = _entry(payerKey, 0);
        bytes memory signature = _certifyPaid(requested, es, ALL);
        uint256[3] memory before = _payerBalances();
        vm.expectRevert(
            abi.encodeWithSelector(ServiceNotActive.selector, requested, IVouchProtocol.ServiceStatus.Requested)
        );
        protocol.settlePaidBatch(requested, es, ALL, signature);
        _assertNothingCharged(before);
        // Even with nothing to collect (the authorization was used), the service check comes first.
        _frontRun(es[0], PRICE0);
        vm.expectRevert(
            abi.encodeWithSelector(ServiceNotActive.selector, requested, IVouchProtocol.ServiceStatus.Requested)
        );
        protocol.settlePaidBatch(requested, es, ALL, signature);
    }

    function test_RevertWhen_ServiceExpired() external {
        uint64 expiry = protocol.getService(svc).expiry;
        vm.warp(expiry + 1);
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](2);
        es[0] = _entry(payerKey, 0);
        es[1] = _entry(KEY_B, 1);
        bytes memory signature = _certifyPaid(svc, es, ALL);
        uint256[3] memory before = _payerBalances();
        vm.expectRevert(abi.encodeWithSelector(ServiceExpired.selector, svc, expiry));
        protocol.settlePaidBatch(svc, es, ALL, signature);
        _assertNothingCharged(before);
        // At the expiry itself a batch still settles.
        vm.warp(expiry);
        protocol.settlePaidBatch(svc, es, ALL, signature);
    }

    function test_RevertWhen_PayerNotPermitted() external {
        vm.prank(serviceOwner);
        protocol.setPublicAccess(svc, false);
        address[] memory callers = new address[](2);
        (callers[0], callers[1]) = (payer, stranger); // the payer A and the submitter are permitted, payer B is not
        vm.prank(serviceOwner);
        protocol.setPermittedCallers(svc, callers, true);
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](2);
        es[0] = _entry(payerKey, 0);
        es[1] = _entry(KEY_B, 0);
        bytes memory signature = _certifyPaid(svc, es, ALL);
        uint256[3] memory before = _payerBalances();
        vm.expectRevert(abi.encodeWithSelector(CallerNotPermitted.selector, svc, payerB));
        vm.prank(stranger);
        protocol.settlePaidBatch(svc, es, ALL, signature);
        _assertNothingCharged(before);
        // Once B is permitted, anyone (even an unpermitted submitter) settles it.
        callers = new address[](1);
        callers[0] = payerB;
        vm.prank(serviceOwner);
        protocol.setPermittedCallers(svc, callers, true);
        vm.prank(address(0xD00D));
        protocol.settlePaidBatch(svc, es, ALL, signature);
        assertEq(protocol.paidBatchCount(), 1, "settled");
    }

    function test_RevertWhen_InvalidJobIndex() external {
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](2);
        es[0] = _entry(payerKey, 0);
        es[1] = _entryFor(KEY_B, 2, PRICE0);
        bytes memory signature = _certifyPaid(svc, es, ALL);
        uint256[3] memory before = _payerBalances();
        vm.expectRevert(abi.encodeWithSelector(InvalidJobIndex.selector, svc, 2, 2));
        protocol.settlePaidBatch(svc, es, ALL, signature);
        _assertNothingCharged(before);
    }

    function test_RevertWhen_HooksRefuseJobCall() external {
        uint64 bp = _createBlueprint(address(hooks));
        uint64 id = _activeService(bp, 3, true);
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](2);
        es[0] = _entry(payerKey, 0);
        es[1] = _entry(KEY_B, 1);
        bytes memory signature = _certifyPaid(id, es, ALL);
        uint256[3] memory before = _payerBalances();
        MockHooks.Mode[4] memory refusals =
            [MockHooks.Mode.Deny, MockHooks.Mode.Revert, MockHooks.Mode.BurnGas, MockHooks.Mode.ShortReturn];
        for (uint256 i; i < refusals.length; ++i) {
            hooks.setModes(MockHooks.Mode.Allow, MockHooks.Mode.Allow, refusals[i], MockHooks.Mode.Allow);
            vm.expectRevert(abi.encodeWithSelector(JobCallRefused.selector, id, 0, payer));
            protocol.settlePaidBatch(id, es, ALL, signature);
        }
        // Only payer B refused: the batch reverts on its entry.
        hooks.setModes(MockHooks.Mode.Allow, MockHooks.Mode.Allow, MockHooks.Mode.Allow, MockHooks.Mode.Allow);
        hooks.setDenied(address(0), payerB);
        vm.expectRevert(abi.encodeWithSelector(JobCallRefused.selector, id, 1, payerB));
        protocol.settlePaidBatch(id, es, ALL, signature);
        _assertNothingCharged(before);
        hooks.setDenied(address(0), address(0));
        protocol.settlePaidBatch(id, es, ALL, signature);
        assertEq(protocol.paidBatchCount(), 1, "allowed now");
    }

    function test_RevertWhen_SignerBitmapInvalid() external {
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](1);
        es[0] = _entry(payerKey, 0);
        uint256[3] memory bad = [uint256(0), 0xF, uint256(1) << 255];
        for (uint256 i; i < bad.length; ++i) {
            bytes memory signature = _certifyPaid(svc, es, bad[i]);
            vm.expectRevert(abi.encodeWithSelector(InvalidSignerBitmap.selector, bad[i], 3));
            protocol.settlePaidBatch(svc, es, bad[i], signature);
        }
        assertEq(protocol.paidBatchCount(), 0, "no batch");
    }

    function test_RevertWhen_TooFewSigners() external {
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](1);
        es[0] = _entry(payerKey, 0);
        // Slot 2 alone holds 3000 of 6000; it is one signer of the 2 required.
        bytes memory signature = _certifyPaid(svc, es, 0x4);
        vm.expectRevert(abi.encodeWithSelector(TooFewSigners.selector, 1, 2));
        protocol.settlePaidBatch(svc, es, 0x4, signature);
        assertEq(protocol.paidBatchCount(), 0, "no batch");
    }

    function test_RevertWhen_QuorumNotReached() external {
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](1);
        es[0] = _entry(payerKey, 0);
        // Slots 0, 2: 4000 of 6000 = 66.66 % < 66.67 %; slots 0, 1: 3000 of 6000.
        bytes memory signature = _certifyPaid(svc, es, 0x5);
        vm.expectRevert(abi.encodeWithSelector(QuorumNotReached.selector, 4000e18, 6000e18, 6667));
        protocol.settlePaidBatch(svc, es, 0x5, signature);
        signature = _certifyPaid(svc, es, 0x3);
        vm.expectRevert(abi.encodeWithSelector(QuorumNotReached.selector, 3000e18, 6000e18, 6667));
        protocol.settlePaidBatch(svc, es, 0x3, signature);
        assertEq(protocol.paidBatchCount(), 0, "no batch");
    }

    function test_RevertWhen_CertificateOverTamperedEntry() external {
        VouchProtocol.PaidResult[] memory es = _fiveEntries();
        bytes memory signature = _certifyPaid(svc, es, ALL);
        uint256[3] memory before = _payerBalances();
        // A different result hash.
        es[2].resultHash = keccak256("tampered result");
        vm.expectRevert(abi.encodeWithSelector(InvalidCertificate.selector, svc, ALL, _paidDigest(svc, es)));
        protocol.settlePaidBatch(svc, es, ALL, signature);
        // A different inputs hash.
        es = _fiveEntries();
        signature = _certifyPaid(svc, es, ALL);
        es[4].inputsHash = keccak256("tampered inputs");
        vm.expectRevert(abi.encodeWithSelector(InvalidCertificate.selector, svc, ALL, _paidDigest(svc, es)));
        protocol.settlePaidBatch(svc, es, ALL, signature);
        // An entry left out (the count and the root change).
        es = _fiveEntries();
        signature = _certifyPaid(svc, es, ALL);
        VouchProtocol.PaidResult[] memory four = new VouchProtocol.PaidResult[](4);
        for (uint256 i; i < 4; ++i) {
            four[i] = es[i];
        }
        vm.expectRevert(abi.encodeWithSelector(InvalidCertificate.selector, svc, ALL, _paidDigest(svc, four)));
        protocol.settlePaidBatch(svc, four, ALL, signature);
        _assertNothingCharged(before);
    }

    function test_RevertWhen_CertificateOverOtherOrder() external {
        VouchProtocol.PaidResult[] memory es = _fiveEntries();
        bytes memory signature = _certifyPaid(svc, es, ALL);
        uint256[3] memory before = _payerBalances();
        (es[0], es[3]) = (es[3], es[0]);
        vm.expectRevert(abi.encodeWithSelector(InvalidCertificate.selector, svc, ALL, _paidDigest(svc, es)));
        protocol.settlePaidBatch(svc, es, ALL, signature);
        _assertNothingCharged(before);
        (es[0], es[3]) = (es[3], es[0]);
        protocol.settlePaidBatch(svc, es, ALL, signature); // the signed order settles
    }

    function test_RevertWhen_CertificateForAnotherService() external {
        // A second service of the same three operators: same signers, but the digest binds the service.
        uint64 other = _activeService(blueprintId, 3, true);
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](2);
        es[0] = _entry(payerKey, 0);
        es[1] = _entry(KEY_B, 1);
        bytes memory forOther = _certifyPaid(other, es, ALL);
        uint256[3] memory before = _payerBalances();
        vm.expectRevert(abi.encodeWithSelector(InvalidCertificate.selector, svc, ALL, _paidDigest(svc, es)));
        protocol.settlePaidBatch(svc, es, ALL, forOther);
        // Signed by other signers than the bitmap says.
        bytes memory wrongSigners = _certifyPaid(svc, es, 0x6);
        vm.expectRevert(abi.encodeWithSelector(InvalidCertificate.selector, svc, ALL, _paidDigest(svc, es)));
        protocol.settlePaidBatch(svc, es, ALL, wrongSigners);
        _assertNothingCharged(before);
        protocol.settlePaidBatch(other, es, ALL, forOther); // it settles where it was signed
        assertEq(protocol.getPaidBatch(1).serviceId, other, "settled on the other service");
    }

    /// @dev The call id binds the job: with two jobs of the same price, the authorization of an entry certified as
    /// job 0 also pays for job 1, but relabelling the entry changes its call id, hence its leaf, and the certificate no
    /// longer verifies (so a submitter cannot move a certified result to another job, or past that job's hooks).
    function test_RevertWhen_CertificateOverRelabelledJob() external {
        IVouchProtocol.Job[] memory jobs = new IVouchProtocol.Job[](2);
        jobs[0] =
            IVouchProtocol.Job({price: PRICE0, deadline: DEADLINE0, verification: IVouchProtocol.Verification.Exact});
        jobs[1] =
            IVouchProtocol.Job({price: PRICE0, deadline: DEADLINE1, verification: IVouchProtocol.Verification.Exact});
        vm.prank(developer);
        uint64 bp = protocol.createBlueprint("ipfs://same-price", bytes32(0), jobs, _policy(), address(0), address(0));
        uint64 id = _activeService(bp, 3, true);
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](2);
        es[0] = _entryFor(payerKey, 0, PRICE0);
        es[1] = _entryFor(KEY_B, 1, PRICE0);
        bytes memory signature = _certifyPaid(id, es, ALL);
        bytes32 signed = _paidDigest(id, es);
        uint256[3] memory before = _payerBalances();

        for (uint256 i; i < 2; ++i) {
            VouchProtocol.PaidResult[] memory relabelled = new VouchProtocol.PaidResult[](2);
            (relabelled[0], relabelled[1]) = (_copy(es[0]), _copy(es[1]));
            relabelled[i].jobIndex = 1 - es[i].jobIndex; // same price: the authorization still pays for it
            assertTrue(_entryCallId(id, relabelled[i]) != _entryCallId(id, es[i]), "another job, another call id");
            bytes32 digest = _paidDigest(id, relabelled);
            assertTrue(digest != signed, "another digest");
            vm.expectRevert(abi.encodeWithSelector(InvalidCertificate.selector, id, ALL, digest));
            protocol.settlePaidBatch(id, relabelled, ALL, signature);
        }
        // Both relabelled at once (swapping the jobs keeps the job counts and the amount).
        VouchProtocol.PaidResult[] memory swapped = new VouchProtocol.PaidResult[](2);
        (swapped[0], swapped[1]) = (_copy(es[0]), _copy(es[1]));
        (swapped[0].jobIndex, swapped[1].jobIndex) = (1, 0);
        vm.expectRevert(abi.encodeWithSelector(InvalidCertificate.selector, id, ALL, _paidDigest(id, swapped)));
        protocol.settlePaidBatch(id, swapped, ALL, signature);
        _assertNothingCharged(before);

        // The certified labels settle.
        _expectPaidCallSettled(id, es[0], 1, PRICE0);
        _expectPaidCallSettled(id, es[1], 1, PRICE0);
        protocol.settlePaidBatch(id, es, ALL, signature);
        assertEq(before[0] - token.balanceOf(payer), PRICE0, "A charged once");
        assertEq(before[1] - token.balanceOf(payerB), PRICE0, "B charged once");
    }

    function test_RevertWhen_AuthorizationSignatureInvalid() external {
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](3);
        es[0] = _entry(payerKey, 0);
        es[1] = _entry(KEY_B, 1);
        es[2] = _entry(KEY_C, 0);
        es[2].signature[7] ^= 0x01;
        bytes memory signature = _certifyPaid(svc, es, ALL); // the certificate does not cover the authorization
        uint256[3] memory before = _payerBalances();
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        protocol.settlePaidBatch(svc, es, ALL, signature);
        // An authorization of another amount than the job price does not verify either.
        es[2] = _entryFor(KEY_C, 0, PRICE1);
        signature = _certifyPaid(svc, es, ALL);
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        protocol.settlePaidBatch(svc, es, ALL, signature);
        _assertNothingCharged(before);
        for (uint256 i; i < 2; ++i) {
            assertFalse(token.authorizationState(es[i].from, es[i].nonce), "earlier entries not consumed");
        }
    }

    function test_RevertWhen_AuthorizationExpired() external {
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](2);
        es[0] = _entry(payerKey, 0);
        es[1] = _entry(KEY_B, 1);
        es[1].validBefore = block.timestamp + 60;
        es[1].signature = _authorize(KEY_B, PRICE1, es[1].validAfter, es[1].validBefore, es[1].nonce);
        bytes memory signature = _certifyPaid(svc, es, ALL);
        uint256[3] memory before = _payerBalances();
        vm.warp(es[1].validBefore);
        vm.expectRevert(
            abi.encodeWithSelector(VouchUSD.AuthorizationExpired.selector, es[1].validBefore, es[1].validBefore)
        );
        protocol.settlePaidBatch(svc, es, ALL, signature);
        _assertNothingCharged(before);
        assertFalse(token.authorizationState(payer, es[0].nonce), "entry 0 not consumed");
        vm.warp(es[1].validBefore - 1);
        protocol.settlePaidBatch(svc, es, ALL, signature); // within the window it settles
    }

    function test_RevertWhen_AuthorizationNotYetValid() external {
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](1);
        es[0] = _entry(payerKey, 0);
        es[0].validAfter = block.timestamp + 10;
        es[0].signature = _authorize(payerKey, PRICE0, es[0].validAfter, es[0].validBefore, es[0].nonce);
        bytes memory signature = _certifyPaid(svc, es, ALL);
        uint256[3] memory before = _payerBalances();
        vm.expectRevert(
            abi.encodeWithSelector(VouchUSD.AuthorizationNotYetValid.selector, es[0].validAfter, block.timestamp)
        );
        protocol.settlePaidBatch(svc, es, ALL, signature);
        _assertNothingCharged(before);
    }

    function test_RevertWhen_AuthorizationDuplicatedInBatch() external {
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](3);
        es[0] = _entry(payerKey, 0);
        es[1] = _entry(KEY_B, 1);
        es[2] = es[0];
        bytes memory signature = _certifyPaid(svc, es, ALL); // a quorum even signed it
        uint256[3] memory before = _payerBalances();
        vm.expectRevert(abi.encodeWithSelector(VouchUSD.AuthorizationAlreadyUsed.selector, payer, es[0].nonce));
        protocol.settlePaidBatch(svc, es, ALL, signature);
        _assertNothingCharged(before);
        // Same (from, nonce) with another result: still one authorization.
        es[2].resultHash = keccak256("another result");
        signature = _certifyPaid(svc, es, ALL);
        vm.expectRevert(abi.encodeWithSelector(VouchUSD.AuthorizationAlreadyUsed.selector, payer, es[0].nonce));
        protocol.settlePaidBatch(svc, es, ALL, signature);
        _assertNothingCharged(before);
    }

    function test_RevertWhen_PayerBalanceTooLow() external {
        uint256 poorKey = 0xD0D;
        address poor = vm.addr(poorKey);
        token.mint(poor, PRICE1 - 1);
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](2);
        es[0] = _entry(payerKey, 0);
        es[1] = _entry(poorKey, 1);
        bytes memory signature = _certifyPaid(svc, es, ALL);
        uint256[3] memory before = _payerBalances();
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, poor, PRICE1 - 1, PRICE1)
        );
        protocol.settlePaidBatch(svc, es, ALL, signature);
        _assertNothingCharged(before);
        assertEq(token.balanceOf(poor), PRICE1 - 1, "poor payer untouched");
        token.mint(poor, 1);
        protocol.settlePaidBatch(svc, es, ALL, signature);
        assertEq(token.balanceOf(poor), 0, "charged once funded");
    }

    // ===============================================================================================================
    // Fuzz
    // ===============================================================================================================

    /// @dev Fuzz input of `testFuzz_SettlePaidBatch_ConservesEveryUnit`.
    struct FuzzCase {
        uint256 seed; // jobs and payers of the entries
        uint256 size; // 1..32 entries
        uint96 price0;
        uint96 price1;
        uint16 protocolFeeBps;
        uint16 developerFeeBps;
        uint16[3] commissionBps; // up to 120 % (capped at 100 % by the protocol)
        uint256[3] stakes; // slashable stake now, 1/2 to 2 × the snapshot
        bool allSign; // else slots 1, 2 when they reach the quorum
    }

    /// @dev Any batch size, prices, fees, commissions and stakes: every collected unit is accounted for exactly and
    /// the protocol and staking hold exactly what they owe.
    function testFuzz_SettlePaidBatch_ConservesEveryUnit(FuzzCase memory c) external {
        c.size = bound(c.size, 1, 32);
        c.price0 = uint96(bound(c.price0, 1, type(uint96).max));
        c.price1 = uint96(bound(c.price1, 1, type(uint96).max));
        c.protocolFeeBps = uint16(bound(c.protocolFeeBps, 0, BPS));
        c.developerFeeBps = uint16(bound(c.developerFeeBps, 0, BPS - c.protocolFeeBps));
        (uint64 id, uint256 bitmap) = _fuzzService(c);
        VouchProtocol.PaidResult[] memory es = _fuzzEntries(c);
        uint256[3] memory before = _payerBalances();
        Expected memory x = _expected(id, es, _noSkips(c.size), bitmap, c.protocolFeeBps);

        protocol.settlePaidBatch(id, es, bitmap, _certifyPaid(id, es, bitmap));

        uint256[3] memory afterwards = _payerBalances();
        uint256 paid = before[0] - afterwards[0] + before[1] - afterwards[1] + before[2] - afterwards[2];
        assertEq(paid, x.collected, "payers paid exactly the prices");
        // Every part equals the docs' formula...
        _assertCredited(id, x);
        assertLt(x.dust, 3 * c.size, "dust below one unit per signer and entry");
        // ...and Σ collected = developer + protocol + Σ commissions + Σ delegator rewards + dust, to the unit, read
        // from the contracts themselves.
        uint256 parts = protocol.claimable(developer) + protocol.claimable(treasury);
        for (uint256 k; k < 3; ++k) {
            parts += protocol.claimable(serviceOperators[k]) + staking.rewardsOf(serviceOperators[k]);
        }
        assertEq(paid, parts, "conservation");
        // Solvency: the protocol holds exactly what it owes, staking exactly what it distributed.
        _assertSolvent();
        assertEq(token.balanceOf(address(staking)), staking.totalRewards(), "staking funded");
        assertEq(protocol.getPaidBatch(1).recordRoot, _recordRoot(es, _payments(es, c.price0, c.price1)), "records");
    }

    /// @dev A protocol with the fuzzed protocol fee, a blueprint with the fuzzed prices and developer fee, a service of
    /// operators 0..2 with the fuzzed commissions and stakes; returns it and a signer bitmap reaching its quorum.
    function _fuzzService(FuzzCase memory c) internal returns (uint64 id, uint256 bitmap) {
        protocol = new VouchProtocol(IERC20(address(token)), staking, registry, treasury, c.protocolFeeBps);
        staking.setProtocol(address(protocol));
        IVouchProtocol.Job[] memory jobs = new IVouchProtocol.Job[](2);
        jobs[0] =
            IVouchProtocol.Job({price: c.price0, deadline: DEADLINE0, verification: IVouchProtocol.Verification.Exact});
        jobs[1] =
            IVouchProtocol.Job({price: c.price1, deadline: DEADLINE1, verification: IVouchProtocol.Verification.Exact});
        IVouchProtocol.Policy memory policy = _policy();
        policy.developerFeeBps = c.developerFeeBps;
        vm.prank(developer);
        uint64 bp = protocol.createBlueprint("ipfs://fuzz", bytes32(0), jobs, policy, address(0), address(0));
        id = _activeService(bp, 3, true);
        for (uint256 i; i < 3; ++i) {
            staking.setCommission(serviceOperators[i], uint16(bound(c.commissionBps[i], 0, 12_000)));
            uint256 snapshot = (i + 1) * 1000e18;
            staking.setActiveStake(serviceOperators[i], bound(c.stakes[i], snapshot / 2, 2 * snapshot));
        }
        bitmap = c.allSign || !protocol.quorumReached(id, 0x6) ? ALL : 0x6;
        assertTrue(protocol.quorumReached(id, bitmap), "quorum");
    }

    /// @dev `c.size` entries with jobs from the bits of `c.seed` and payers picked from it; each payer is minted the
    /// price first.
    function _fuzzEntries(FuzzCase memory c) internal returns (VouchProtocol.PaidResult[] memory es) {
        uint256[3] memory payerKeys = [payerKey, KEY_B, KEY_C];
        es = new VouchProtocol.PaidResult[](c.size);
        for (uint256 i; i < c.size; ++i) {
            uint8 job = uint8((c.seed >> i) & 1);
            uint256 key = payerKeys[uint256(keccak256(abi.encode(c.seed, i))) % 3];
            uint256 price = job == 0 ? c.price0 : c.price1;
            token.mint(vm.addr(key), price);
            es[i] = _entryFor(key, job, price);
        }
    }

    /// @dev Any signer bitmap on a service of 2..8 operators: the batch settles exactly when the bitmap fits, has 2
    /// signers and reaches 2/3 of the stake; otherwise it reverts with the typed reason and charges nothing.
    function testFuzz_SettlePaidBatch_SignerBitmapQuorum(uint256 bitmap, uint256 n) external {
        n = bound(n, 2, 8);
        uint64 id = _activeService(blueprintId, n, true);
        bitmap = bound(bitmap, 0, (uint256(1) << (n + 1)) - 1); // sometimes a bit outside the set
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](2);
        es[0] = _entry(payerKey, 0);
        es[1] = _entry(KEY_B, 1);
        bytes memory signature = BlsSigner.signBitmap(serviceSecretKeys, bitmap, _paidDigest(id, es));

        uint256 count;
        uint256 stake;
        uint256 total;
        for (uint256 i; i < n; ++i) {
            uint256 w = (i + 1) * 1000e18;
            total += w;
            if ((bitmap >> i) & 1 == 1) {
                ++count;
                stake += w;
            }
        }
        uint256[3] memory before = _payerBalances();
        if (bitmap == 0 || bitmap >> n != 0) {
            vm.expectRevert(abi.encodeWithSelector(InvalidSignerBitmap.selector, bitmap, n));
        } else if (count < 2) {
            vm.expectRevert(abi.encodeWithSelector(TooFewSigners.selector, count, 2));
        } else if (stake * BPS < 6667 * total) {
            vm.expectRevert(abi.encodeWithSelector(QuorumNotReached.selector, stake, total, 6667));
        } else {
            assertTrue(protocol.quorumReached(id, bitmap), "quorumReached agrees");
            protocol.settlePaidBatch(id, es, bitmap, signature);
            assertEq(protocol.getPaidBatch(1).signerBitmap, bitmap, "bitmap recorded");
            assertEq(before[0] - token.balanceOf(payer), PRICE0, "A charged");
            assertEq(before[1] - token.balanceOf(payerB), PRICE1, "B charged");
            for (uint256 i; i < n; ++i) {
                bool signed = (bitmap >> i) & 1 == 1;
                uint256 earned = protocol.claimable(serviceOperators[i]) + staking.rewardsOf(serviceOperators[i]);
                assertEq(earned > 0, signed, "only signers earn");
            }
            _assertSolvent();
            return;
        }
        protocol.settlePaidBatch(id, es, bitmap, signature);
        _assertNothingCharged(before);
    }

    function _payments(VouchProtocol.PaidResult[] memory es, uint256 price0, uint256 price1)
        internal
        pure
        returns (uint256[] memory payments)
    {
        payments = new uint256[](es.length);
        for (uint256 i; i < es.length; ++i) {
            payments[i] = es[i].jobIndex == 0 ? price0 : price1;
        }
    }

    // ===============================================================================================================
    // Hooks
    // ===============================================================================================================

    function test_SettlePaidBatch_NotifiesHooksOfEachEntry() external {
        uint64 bp = _createBlueprint(address(hooks));
        uint64 id = _activeService(bp, 3, true);
        VouchProtocol.PaidResult[] memory es = _fiveEntries();
        protocol.settlePaidBatch(id, es, ALL, _certifyPaid(id, es, ALL));
        assertEq(hooks.resultCount(), 5, "one onResult per entry");
        for (uint256 i; i < es.length; ++i) {
            assertEq(
                hooks.results(_entryCallId(id, es[i])), es[i].resultHash, "onResult(serviceId, paidCallId, result)"
            );
        }
    }

    function test_SettlePaidBatch_HookFailureNeverBlocks() external {
        uint64 bp = _createBlueprint(address(hooks));
        uint64 id = _activeService(bp, 3, true);
        MockHooks.Mode[2] memory failures = [MockHooks.Mode.Revert, MockHooks.Mode.BurnGas];
        for (uint256 m; m < failures.length; ++m) {
            hooks.setModes(MockHooks.Mode.Allow, MockHooks.Mode.Allow, MockHooks.Mode.Allow, failures[m]);
            VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](3);
            es[0] = _entry(payerKey, 0);
            es[1] = _entry(KEY_B, 1);
            es[2] = _entry(KEY_C, 0);
            bytes memory signature = _certifyPaid(id, es, ALL);
            uint256[3] memory before = _payerBalances();
            for (uint256 i; i < es.length; ++i) {
                vm.expectEmit(address(protocol));
                emit HookFailed(id, _entryCallId(id, es[i]), address(hooks));
            }
            protocol.settlePaidBatch(id, es, ALL, signature);
            uint256[3] memory afterwards = _payerBalances();
            assertEq(before[0] - afterwards[0], PRICE0, "A charged");
            assertEq(before[1] - afterwards[1], PRICE1, "B charged");
            assertEq(before[2] - afterwards[2], PRICE0, "C charged");
        }
        assertEq(hooks.resultCount(), 0, "no hook call succeeded");
        assertEq(protocol.paidBatchCount(), 2, "both settled");
        _assertSolvent();
    }

    function test_SettlePaidBatch_HookCannotReenter() external {
        uint64 bp = _createBlueprint(address(hooks));
        uint64 id = _activeService(bp, 3, true);
        hooks.setModes(MockHooks.Mode.Allow, MockHooks.Mode.Allow, MockHooks.Mode.Allow, MockHooks.Mode.Deny);
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](1);
        es[0] = _entry(payerKey, 0);
        bytes memory signature = _certifyPaid(id, es, ALL);
        // The hook tries to resubmit the batch from inside the notification.
        hooks.setReentry(address(protocol), abi.encodeCall(VouchProtocol.settlePaidBatch, (id, es, ALL, signature)));
        vm.expectEmit(address(protocol));
        emit HookFailed(id, _entryCallId(id, es[0]), address(hooks));
        protocol.settlePaidBatch(id, es, ALL, signature);
        assertEq(protocol.paidBatchCount(), 1, "no nested batch");
        assertEq(hooks.resultCount(), 0, "re-entry failed");
    }

    function test_RevertWhen_SettlePaidBatchStarvesTheHook() external {
        uint64 bp = _createBlueprint(address(hooks));
        uint64 id = _activeService(bp, 3, true);
        hooks.setModes(MockHooks.Mode.Allow, MockHooks.Mode.Allow, MockHooks.Mode.Allow, MockHooks.Mode.BurnGas);
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](1);
        es[0] = _entry(payerKey, 0);
        bytes memory signature = _certifyPaid(id, es, ALL);
        bytes memory data = abi.encodeCall(VouchProtocol.settlePaidBatch, (id, es, ALL, signature));
        bool starved;
        bool settled;
        for (uint256 gasLimit = 300_000; gasLimit < 1_500_000; gasLimit += 5000) {
            (bool ok, bytes memory reason) = address(protocol).call{gas: gasLimit}(data);
            if (ok) {
                settled = true;
                break;
            }
            if (_selector(reason) == InsufficientGasForHook.selector) starved = true;
        }
        assertTrue(starved, "InsufficientGasForHook seen");
        assertTrue(settled, "settled with enough gas");
        assertTrue(token.authorizationState(payer, es[0].nonce), "collected");
    }

    /// @dev `IBlueprintHooks.onResult` means "a call was settled with `resultHash`". An entry the batch skips (its
    /// authorization was already used) is neither paid nor settled by this batch, so its hooks must not hear of it
    /// (again): a replay of a settled batch (its certificate is public) must not make the hooks count a result twice,
    /// and an entry whose call was opened with `openPaidCall` must not be announced as settled while that call is
    /// still open (and may be refunded).
    function test_SettlePaidBatch_HooksNotNotifiedOfSkippedEntries() external {
        uint64 bp = _createBlueprint(address(hooks));
        uint64 id = _activeService(bp, 3, true);
        VouchProtocol.PaidResult[] memory es = new VouchProtocol.PaidResult[](3);
        es[0] = _entry(payerKey, 0);
        es[1] = _entry(KEY_B, 1);
        es[2] = _entry(KEY_C, 0);
        bytes memory signature = _certifyPaid(id, es, ALL);
        // es[0] was opened as an escrowed call first: the batch skips it.
        uint256 opened = protocol.openPaidCall(_asPaidCall(id, es[0]));
        protocol.settlePaidBatch(id, es, ALL, signature);
        assertTrue(protocol.getCall(opened).status == IVouchProtocol.CallStatus.Open, "opened call still open");
        assertEq(hooks.results(opened), bytes32(0), "an open call is not announced as settled");
        assertEq(hooks.resultCount(), 2, "one notification per settled entry");
        // A replay of the same batch by anyone settles nothing.
        vm.expectRevert(abi.encodeWithSelector(NothingToCollect.selector, 3));
        vm.prank(stranger);
        protocol.settlePaidBatch(id, es, ALL, signature);
        assertEq(hooks.resultCount(), 2, "a replay notifies nothing");
        // A batch mixing used and fresh entries announces the fresh ones only.
        VouchProtocol.PaidResult[] memory mixed = new VouchProtocol.PaidResult[](3);
        mixed[0] = es[1]; // settled by the first batch
        mixed[1] = _entry(payerKey, 1);
        mixed[2] = es[0]; // the open call
        protocol.settlePaidBatch(id, mixed, ALL, _certifyPaid(id, mixed, ALL));
        assertEq(hooks.resultCount(), 3, "one more notification");
        assertEq(hooks.results(_entryCallId(id, mixed[1])), mixed[1].resultHash, "the fresh entry announced");
        assertEq(hooks.results(opened), bytes32(0), "the open call still not announced");
        assertEq(hooks.results(_entryCallId(id, es[1])), es[1].resultHash, "the settled entry announced once");
    }
}
