// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "../utils/Test.sol";
import {StakeToken} from "../../src/tokens/StakeToken.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title StakeTokenTest
/// @notice Unit and fuzz tests of the dev/test stake token: metadata, owner-only minting, ERC-20 transfers and
/// allowances, ownership.
contract StakeTokenTest is Test {
    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    StakeToken internal token;
    address internal owner = address(0x0A11);
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);
    address internal mallory = address(0xBAD);

    function setUp() external {
        token = new StakeToken(owner);
    }

    function test_Metadata() external view {
        assertEq(bytes(token.name()), bytes("Vouch Stake"), "name");
        assertEq(bytes(token.symbol()), bytes("VST"), "symbol");
        assertEq(token.decimals(), 18, "decimals");
        assertEq(token.totalSupply(), 0, "no initial supply");
        assertEq(token.owner(), owner, "owner");
    }

    function test_Constructor_EmitsOwnershipTransferred() external {
        vm.expectEmit();
        emit OwnershipTransferred(address(0), alice);
        new StakeToken(alice);
    }

    function test_RevertWhen_Constructor_ZeroOwner() external {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        new StakeToken(address(0));
    }

    function test_Mint_ByOwner() external {
        vm.expectEmit(address(token));
        emit Transfer(address(0), alice, 100e18);
        vm.prank(owner);
        token.mint(alice, 100e18);
        assertEq(token.balanceOf(alice), 100e18, "balance");
        assertEq(token.totalSupply(), 100e18, "supply");
    }

    function test_RevertWhen_Mint_NotOwner() external {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, mallory));
        vm.prank(mallory);
        token.mint(mallory, 1);
    }

    function test_RevertWhen_Mint_ToZeroAddress() external {
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InvalidReceiver.selector, address(0)));
        vm.prank(owner);
        token.mint(address(0), 1);
    }

    function test_RevertWhen_Mint_SupplyOverflow() external {
        vm.startPrank(owner);
        token.mint(alice, type(uint256).max);
        vm.expectRevert(); // checked arithmetic: Panic(0x11)
        token.mint(bob, 1);
        vm.stopPrank();
    }

    function test_Transfer() external {
        vm.prank(owner);
        token.mint(alice, 10e18);
        vm.expectEmit(address(token));
        emit Transfer(alice, bob, 4e18);
        vm.prank(alice);
        assertTrue(token.transfer(bob, 4e18), "returns true");
        assertEq(token.balanceOf(alice), 6e18, "alice");
        assertEq(token.balanceOf(bob), 4e18, "bob");
    }

    function test_RevertWhen_Transfer_InsufficientBalance() external {
        vm.prank(owner);
        token.mint(alice, 1e18);
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, alice, 1e18, 1e18 + 1));
        vm.prank(alice);
        // Expected to revert, so there is no return value to check.
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        token.transfer(bob, 1e18 + 1);
    }

    function test_ApproveAndTransferFrom() external {
        vm.prank(owner);
        token.mint(alice, 10e18);
        vm.expectEmit(address(token));
        emit Approval(alice, bob, 5e18);
        vm.prank(alice);
        assertTrue(token.approve(bob, 5e18), "approve");
        vm.prank(bob);
        assertTrue(token.transferFrom(alice, mallory, 2e18), "returns true");
        assertEq(token.balanceOf(mallory), 2e18, "moved");
        assertEq(token.allowance(alice, bob), 3e18, "allowance left");
    }

    function test_RevertWhen_TransferFrom_InsufficientAllowance() external {
        vm.prank(owner);
        token.mint(alice, 10e18);
        vm.prank(alice);
        token.approve(bob, 1e18);
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, bob, 1e18, 1e18 + 1));
        vm.prank(bob);
        // Expected to revert, so there is no return value to check.
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        token.transferFrom(alice, bob, 1e18 + 1);
    }

    function test_TransferOwnership() external {
        vm.expectEmit(address(token));
        emit OwnershipTransferred(owner, alice);
        vm.prank(owner);
        token.transferOwnership(alice);
        vm.prank(alice);
        token.mint(alice, 1);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, owner));
        vm.prank(owner);
        token.mint(owner, 1);
    }

    function test_RenounceOwnership_StopsMinting() external {
        vm.prank(owner);
        token.renounceOwnership();
        assertEq(token.owner(), address(0), "no owner");
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, owner));
        vm.prank(owner);
        token.mint(owner, 1);
    }

    function test_RevertWhen_TransferOwnership_NotOwner() external {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, mallory));
        vm.prank(mallory);
        token.transferOwnership(mallory);
    }

    function testFuzz_Mint(address to, uint256 a, uint256 b) external {
        vm.assume(to != address(0));
        a = bound(a, 0, type(uint256).max / 2);
        b = bound(b, 0, type(uint256).max / 2);
        vm.startPrank(owner);
        token.mint(to, a);
        token.mint(to, b);
        vm.stopPrank();
        assertEq(token.balanceOf(to), a + b, "balance");
        assertEq(token.totalSupply(), a + b, "supply");
    }

    function testFuzz_RevertWhen_Mint_NotOwner(address caller, uint256 value) external {
        vm.assume(caller != owner);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, caller));
        vm.prank(caller);
        token.mint(caller, value);
    }

    function testFuzz_Transfer(uint256 balance, uint256 value) external {
        vm.prank(owner);
        token.mint(alice, balance);
        vm.prank(alice);
        if (value > balance) {
            vm.expectRevert(
                abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, alice, balance, value)
            );
            // Expected to revert, so there is no return value to check.
            // forge-lint: disable-next-line(erc20-unchecked-transfer)
            token.transfer(bob, value);
        } else {
            assertTrue(token.transfer(bob, value), "returns true");
        }
        bool ok = value <= balance;
        assertEq(token.balanceOf(alice), ok ? balance - value : balance, "alice");
        assertEq(token.balanceOf(bob), ok ? value : 0, "bob");
        assertEq(token.totalSupply(), balance, "supply unchanged");
    }
}
