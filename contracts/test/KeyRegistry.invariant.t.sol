// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {KeyRegistry} from "../src/KeyRegistry.sol";
import {Vm} from "./utils/Test.sol";
import {VectorTest} from "./utils/Vectors.sol";

/// @title RegistryHandler
/// @notice Random registration attempts for the invariant run: vector keys from their own operator or from anyone,
/// keys with another key's PoP, and arbitrary points.
contract RegistryHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    KeyRegistry public immutable registry;
    address[] public operators;
    bytes[] public pubkeys;
    bytes[] public pops;

    /// @notice Successful registrations, and successes the invariants forbid.
    uint256 public registrations;
    uint256 public forbiddenRegistrations;

    constructor(KeyRegistry registry_, address[] memory operators_, bytes[] memory pubkeys_, bytes[] memory pops_) {
        registry = registry_;
        operators = operators_;
        pubkeys = pubkeys_;
        pops = pops_;
    }

    /// @notice Key i with its PoP, sent by its operator (allowed once) or by `stranger`.
    function register(uint256 i, bool fromOwner, address stranger) external {
        i %= operators.length;
        address sender = fromOwner ? operators[i] : stranger;
        vm.prank(sender);
        try registry.registerKey(pubkeys[i], pops[i]) {
            if (sender == operators[i]) ++registrations;
            else ++forbiddenRegistrations;
        } catch {}
    }

    /// @notice Key i with the PoP of key j, from i's operator: only i == j may succeed.
    function registerWithOtherPop(uint256 i, uint256 j) external {
        i %= operators.length;
        j %= operators.length;
        vm.prank(operators[i]);
        try registry.registerKey(pubkeys[i], pops[j]) {
            if (i == j) ++registrations;
            else ++forbiddenRegistrations;
        } catch {}
    }

    /// @notice Arbitrary 128/256-byte strings: never registered.
    function registerArbitrary(bytes32[4] calldata pk, bytes32[8] calldata pop, address sender) external {
        vm.prank(sender);
        try registry.registerKey(abi.encodePacked(pk), abi.encodePacked(pop)) {
            ++forbiddenRegistrations;
        } catch {}
    }

    /// @notice Number of operators the handler uses.
    function count() external view returns (uint256) {
        return operators.length;
    }
}

/// @title KeyRegistryInvariantTest
/// @notice Whatever sequence of registration attempts runs, only vector keys registered by their own operators are
/// in the registry, and the two mappings agree.
contract KeyRegistryInvariantTest is VectorTest {
    uint256 internal constant KEYS = 16;

    KeyRegistry internal registry;
    RegistryHandler internal handler;

    function setUp() external {
        string memory json = _readVectors();
        registry = _deployRegistry(json);
        Key[] memory keys = _keys(json);
        address[] memory operators = new address[](KEYS);
        bytes[] memory pubkeys = new bytes[](KEYS);
        bytes[] memory pops = new bytes[](KEYS);
        for (uint256 i; i < KEYS; ++i) {
            operators[i] = keys[i].operator;
            pubkeys[i] = keys[i].pubkey;
            pops[i] = keys[i].pop;
        }
        handler = new RegistryHandler(registry, operators, pubkeys, pops);
    }

    /// @notice forge fuzzes only the handler.
    function targetContracts() external view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function invariant_NoForbiddenRegistration() external view {
        assertEq(handler.forbiddenRegistrations(), 0, "a forbidden registration succeeded");
    }

    function invariant_OnlyOwnKeysAndConsistentMappings() external view {
        uint256 registered;
        for (uint256 i; i < KEYS; ++i) {
            address operator = handler.operators(i);
            bytes memory pubkey = handler.pubkeys(i);
            bytes memory key = registry.keyOf(operator);
            address holder = registry.operatorOf(keccak256(pubkey));
            if (key.length == 0) {
                assertEq(holder, address(0), "key registered without its operator");
            } else {
                assertEq(key, pubkey, "operator holds a key that is not its own");
                assertEq(holder, operator, "operatorOf disagrees with keyOf");
                ++registered;
            }
        }
        assertEq(registered, handler.registrations(), "registrations counted");
    }
}
