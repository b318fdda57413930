// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IVouchProtocol} from "../../src/interfaces/IVouchProtocol.sol";
import {VouchSlasher} from "../../src/slashing/VouchSlasher.sol";
import {SlashingBase} from "./SlashingBase.sol";

/// @notice forge cheatcode: marks an account and its storage slots cold.
interface ColdVm {
    /// @notice Marks the slots of `target` and its address as cold.
    function cool(address target) external;
}

/// @title SlasherGasTest
/// @notice Gas of each slasher entry point (the call itself, measured with `gasleft`, printed with `-vv`) against the
/// mock protocol and staking; bounds are asserted so a regression fails. With the real contracts add their `getCall` /
/// `getService` / `getBlueprint` / `slash` / `jail` costs. Each measured call is the first touch of the slasher's
/// storage in its test (cold, as in a transaction).
/// Calls measured after a setup transaction in the same test (veto, execute) first mark the contracts cold with the
/// `cool` cheatcode.
/// @dev Not recorded with `vm.snapshotGasLastCall`: that writes contracts/snapshots/, outside this component's folders.
contract SlasherGasTest is SlashingBase {
    /// @dev forge's `cool` cheatcode (not declared in test/utils/Test.sol).
    ColdVm internal constant COLD = ColdVm(address(uint160(uint256(keccak256("hevm cheat code")))));
    /// @dev forge's console.log address.
    address internal constant CONSOLE = 0x000000000000000000636F6e736F6c652e6c6f67;

    function setUp() public override {
        super.setUp();
        staking.setSkipRecords(true);
        // Blueprint 2 jails at the first miss (for the jailing measurement, without warming blueprint 1 in the test).
        IVouchProtocol.Policy memory policy = _policy();
        policy.jailAfterMisses = 1;
        protocol.setBlueprint(BLUEPRINT_NO_ARBITER, _blueprint(address(0), policy));
    }

    function test_Gas_ReportEquivocation_Single() external {
        VouchSlasher.SignedResult memory a = _signed(sk0, CALL_OPEN, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _signed(sk0, CALL_OPEN, INPUTS, WRONG);
        uint256 before = gasleft();
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, b);
        _report("reportEquivocation (single + single)", before - gasleft(), 500_000);
    }

    function test_Gas_ReportEquivocation_Batch() external {
        Leaf[] memory leaves = new Leaf[](64);
        for (uint256 i; i < 64; ++i) {
            leaves[i] = Leaf({callId: 2000 + i, inputsHash: INPUTS, resultHash: RESULT});
        }
        leaves[17].callId = CALL_OPEN;
        VouchSlasher.SignedResult memory a = _signed(sk0, CALL_OPEN, INPUTS, WRONG);
        VouchSlasher.SignedResult memory b = _batch(sk0, address(protocol), SERVICE, leaves, 17);
        uint256 before = gasleft();
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, b);
        _report("reportEquivocation (single + 64-call batch)", before - gasleft(), 510_000);
    }

    function test_Gas_ProposeDeviation() external {
        VouchSlasher.SignedResult memory s = _signed(sk2, CALL_SETTLED, INPUTS, WRONG);
        uint256 before = gasleft();
        slasher.proposeDeviation(CALL_SETTLED, op2, 2, s);
        // 330,000 when call ids were uint64 (two storage slots per proposal); a uint256 call id makes a proposal three
        // slots however it is packed, so the bound grows by one new slot (22,100: 20,000 + a cold access).
        _report("proposeDeviation", before - gasleft(), 352_100);
    }

    /// @dev A 384-dimension f32 embedding (1,536 bytes, the all-MiniLM-L6-v2 shape) published in calldata. The
    /// calldata itself (≈ 16 gas a byte, paid by the transaction) is not in the measured number.
    function test_Gas_ProposeCommitmentDeviation() external {
        bytes memory output = new bytes(1536);
        for (uint256 i; i < output.length; ++i) {
            // forge-lint: disable-next-line(unsafe-typecast)
            output[i] = bytes1(uint8(i * 37 + 11)); // any non-zero-heavy bytes
        }
        VouchSlasher.SignedCommitment memory c = _committed(sk2, CALL_SETTLED, INPUTS, output);
        uint256 before = gasleft();
        slasher.proposeCommitmentDeviation(CALL_SETTLED, op2, 2, c, output);
        // proposeDeviation's work plus hashing the output and decoding the blueprint's arbiter.
        _report("proposeCommitmentDeviation (1,536-byte output)", before - gasleft(), 365_000);
    }

    function test_Gas_VetoDeviation() external {
        uint256 id = slasher.proposeDeviation(CALL_SETTLED, op2, 2, _signed(sk2, CALL_SETTLED, INPUTS, WRONG));
        _coolAll();
        vm.prank(ARBITER);
        uint256 before = gasleft();
        slasher.vetoDeviation(id);
        _report("vetoDeviation", before - gasleft(), 90_000);
    }

    function test_Gas_ExecuteDeviation() external {
        uint256 id = slasher.proposeDeviation(CALL_SETTLED, op2, 2, _signed(sk2, CALL_SETTLED, INPUTS, WRONG));
        vm.warp(START + DISPUTE_WINDOW);
        _coolAll();
        uint256 before = gasleft();
        slasher.executeDeviation(id);
        _report("executeDeviation", before - gasleft(), 115_000);
    }

    function test_Gas_ReportMissedDeadline() external {
        vm.warp(START + 1 hours + DISPUTE_WINDOW + 1); // past the refunded call's alibi window
        uint256 before = gasleft();
        slasher.reportMissedDeadline(CALL_REFUNDED, op0, 0);
        _report("reportMissedDeadline", before - gasleft(), 165_000);
    }

    function test_Gas_ReportMissedDeadline_Jailing() external {
        // Call 20 of service 2 (blueprint 2) was settled by op3 alone: op0 at slot 1 missed it.
        vm.warp(START + 10 minutes + DISPUTE_WINDOW + 1); // past its alibi window
        uint256 before = gasleft();
        slasher.reportMissedDeadline(CALL_OTHER_SERVICE, op0, 1);
        _report("reportMissedDeadline (jails)", before - gasleft(), 175_000);
    }

    /// @dev Marks the slasher, the mocks and the registry cold, as at the start of a new transaction.
    function _coolAll() internal {
        COLD.cool(address(slasher));
        COLD.cool(address(protocol));
        COLD.cool(address(staking));
        COLD.cool(address(registry));
    }

    function _report(string memory name, uint256 gasUsed, uint256 bound_) internal view {
        (bool ok,) = CONSOLE.staticcall(abi.encodeWithSignature("log(string,uint256)", name, gasUsed));
        ok; // console output is best effort
        assertLt(gasUsed, bound_, name);
    }
}
