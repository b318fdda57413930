// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IVouchProtocol} from "../../src/interfaces/IVouchProtocol.sol";
import {VouchDigest} from "../../src/bls/VouchDigest.sol";
import {VouchProtocol} from "../../src/protocol/VouchProtocol.sol";
import {ProtocolBase} from "./ProtocolBase.sol";

/// @dev Cheatcode not declared in test/utils/Test.sol.
interface VmSnapshotValue {
    /// @notice Records `value` as `name` in snapshots/<test contract>.json.
    function snapshotValue(string calldata name, uint256 value) external;
}

/// @title ProtocolGasTest
/// @notice Gas of the protocol's hot paths, recorded with `vm.snapshotGasLastCall` in snapshots/ProtocolGasTest.json
/// (call gas) plus `*_tx` values (21,000 + calldata + call gas; the EIP-7623 floor is lower for these calls).
/// @dev Everything a measured call reads is prepared in setUp (a separate transaction) and certificates and x402
/// authorizations are made there too, so the measured call touches the protocol's storage cold, as a real transaction
/// does. Steady state: each service settled one call in setUp, so fee recipients' balances are already non-zero (the
/// first settlement of a service pays ~20k gas more per fee recipient for new storage slots). Services: 3 operators (keys 0..2) and 10 operators (keys 0..9), all signing, 10% commission each. The staking
/// contract is the test double: `distributeRewards` costs differ from `VouchStaking`'s.
contract ProtocolGasTest is ProtocolBase {
    VmSnapshotValue internal constant vmExtra =
        VmSnapshotValue(address(uint160(uint256(keccak256("hevm cheat code")))));

    uint64 internal service3;
    uint64 internal service10;
    uint256 internal call3;
    uint256 internal call10;
    bytes internal sig3;
    bytes internal sig10;
    bytes32 internal constant RESULT = keccak256("result");

    uint256[] internal batchIds;
    bytes32[] internal batchResults;
    bytes internal batchSig;

    VouchProtocol.PaidCall internal onePaid;
    VouchProtocol.PaidCall[] internal manyPaid;

    VouchProtocol.PaidResult[] internal paidBatch;
    bytes internal paidBatchSig;

    function setUp() public override {
        super.setUp();
        for (uint256 i; i < 10; ++i) {
            staking.setCommission(keys[i].operator, 1000);
        }
        // Steady state: each service already settled once, so the fee recipients' balances are non-zero.
        service3 = _activeService(blueprintId, 3, true);
        _settleOne(service3, 0, 0x7);
        call3 = _call(service3, 0);
        sig3 = _certify(service3, call3, RESULT, 0x7);

        service10 = _activeService(blueprintId, 10, true);
        _settleOne(service10, 0, 0x3FF);
        call10 = _call(service10, 0);
        sig10 = _certify(service10, call10, RESULT, 0x3FF);

        for (uint256 i; i < 100; ++i) {
            batchIds.push(_call(service10, 0));
            batchResults.push(keccak256(abi.encode("result", i)));
        }
        batchSig = _sign(0x3FF, _batchDigest(service10, batchIds, batchResults));

        onePaid = _paidCall(service10, 0);
        for (uint256 i; i < 100; ++i) {
            manyPaid.push(_paidCall(service10, 0));
        }

        // x402 fast path: 100 different payers (each paid before, so its balance slot is non-zero, as an agent's
        // wallet is), one certificate by the 10 operators over the whole batch.
        bytes32[] memory leaves = new bytes32[](100);
        for (uint256 i; i < 100; ++i) {
            uint256 key = 0xB0B000 + i;
            token.mint(vm.addr(key), 100e6);
            VouchProtocol.PaidCall memory p = _paidCallFrom(key, service10, 0, PRICE0);
            bytes32 resultHash = keccak256(abi.encode("paid result", i));
            paidBatch.push(
                VouchProtocol.PaidResult({
                    from: p.from,
                    jobIndex: 0,
                    validAfter: p.validAfter,
                    validBefore: p.validBefore,
                    nonce: p.nonce,
                    signature: p.signature,
                    inputsHash: p.inputsHash,
                    resultHash: resultHash
                })
            );
            leaves[i] = VouchDigest.batchLeaf(_paidCallId(service10, 0, p.from, p.nonce), p.inputsHash, resultHash);
        }
        paidBatchSig = _sign(
            0x3FF,
            VouchDigest.batchDigest(block.chainid, address(protocol), service10, VouchDigest.batchRoot(leaves), 100)
        );
    }

    function test_Gas_CallJob() external {
        bytes memory inputs = abi.encodePacked(keccak256("prompt"), keccak256("params"));
        vm.prank(payer);
        protocol.callJob(service10, 0, inputs);
        uint256 gasUsed = vm.snapshotGasLastCall("callJob");
        _tx("callJob_tx", abi.encodeCall(VouchProtocol.callJob, (service10, 0, inputs)), gasUsed);
        assertLt(gasUsed, 150_000, "callJob");
    }

    function test_Gas_OpenPaidCall() external {
        VouchProtocol.PaidCall memory p = onePaid;
        protocol.openPaidCall(p);
        uint256 gasUsed = vm.snapshotGasLastCall("openPaidCall");
        _tx("openPaidCall_tx", abi.encodeCall(VouchProtocol.openPaidCall, (p)), gasUsed);
        assertLt(gasUsed, 200_000, "openPaidCall");
    }

    function test_Gas_OpenPaidCalls_100() external {
        VouchProtocol.PaidCall[] memory ps = manyPaid;
        uint64 countBefore = protocol.callCount();
        uint256[] memory ids = protocol.openPaidCalls(ps);
        uint256 gasUsed = vm.snapshotGasLastCall("openPaidCalls_100");
        _tx("openPaidCalls_100_tx", abi.encodeCall(VouchProtocol.openPaidCalls, (ps)), gasUsed);
        assertEq(ids.length, 100, "ids");
        for (uint256 i; i < 100; ++i) {
            assertEq(ids[i], _paidCallId(service10, 0, ps[i].from, ps[i].nonce), "derived id");
            assertTrue(protocol.getCall(ids[i]).status == IVouchProtocol.CallStatus.Open, "opened");
        }
        assertEq(protocol.callCount(), countBefore, "x402 calls take no counter id");
    }

    function test_Gas_Settle_3Signers() external {
        bytes memory signature = sig3;
        protocol.settle(call3, RESULT, 0x7, signature);
        uint256 gasUsed = vm.snapshotGasLastCall("settle_3_signers");
        _tx("settle_3_signers_tx", abi.encodeCall(VouchProtocol.settle, (call3, RESULT, 0x7, signature)), gasUsed);
        assertLt(gasUsed, 400_000, "settle 3");
    }

    function test_Gas_Settle_10Signers() external {
        bytes memory signature = sig10;
        protocol.settle(call10, RESULT, 0x3FF, signature);
        uint256 gasUsed = vm.snapshotGasLastCall("settle_10_signers");
        _tx("settle_10_signers_tx", abi.encodeCall(VouchProtocol.settle, (call10, RESULT, 0x3FF, signature)), gasUsed);
        assertLt(gasUsed, 700_000, "settle 10");
    }

    function test_Gas_SettleBatch_100Calls_10Signers() external {
        uint256[] memory ids = batchIds;
        bytes32[] memory results = batchResults;
        bytes memory signature = batchSig;
        protocol.settleBatch(service10, ids, results, 0x3FF, signature);
        uint256 gasUsed = vm.snapshotGasLastCall("settleBatch_100_calls_10_signers");
        _tx(
            "settleBatch_100_calls_10_signers_tx",
            abi.encodeCall(VouchProtocol.settleBatch, (service10, ids, results, 0x3FF, signature)),
            gasUsed
        );
    }

    function test_Gas_SettlePaidBatch_100Calls_10Signers() external {
        VouchProtocol.PaidResult[] memory entries = paidBatch;
        bytes memory signature = paidBatchSig;
        uint256 accountedBefore = protocol.accounted();
        uint256 batchId = protocol.settlePaidBatch(service10, entries, 0x3FF, signature);
        uint256 gasUsed = vm.snapshotGasLastCall("settlePaidBatch_100_calls_10_signers");
        _tx(
            "settlePaidBatch_100_calls_10_signers_tx",
            abi.encodeCall(VouchProtocol.settlePaidBatch, (service10, entries, 0x3FF, signature)),
            gasUsed
        );
        assertEq(protocol.getPaidBatch(batchId).count, 100, "batch recorded");
        for (uint256 i; i < 100; ++i) {
            assertEq(token.balanceOf(entries[i].from), uint256(100e6 - PRICE0), "each payer paid the price once");
        }
        _assertSolvent();
        assertGt(protocol.accounted(), accountedBefore, "fees credited");
    }

    /// @dev Records the whole-transaction gas: 21,000 + calldata (4 per zero byte, 16 per other) + call gas.
    function _tx(string memory name, bytes memory data, uint256 gasUsed) internal {
        uint256 calldataGas;
        for (uint256 i; i < data.length; ++i) {
            calldataGas += data[i] == 0 ? 4 : 16;
        }
        vmExtra.snapshotValue(name, 21_000 + calldataGas + gasUsed);
    }
}
