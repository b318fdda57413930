// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title StakeToken
/// @notice "Vouch Stake" (VST), the 18-decimal ERC-20 that operators and delegators stake in `VouchStaking`.
/// @dev DEVELOPMENT / TEST TOKEN ONLY: the owner can mint any amount to anyone, so it has no economic value. The
/// protocol accepts any ERC-20 as its stake asset; production deployments use a real token instead of this one.
contract StakeToken is ERC20, Ownable {
    /// @notice Deploys the token with no supply.
    /// @param initialOwner The account allowed to mint.
    constructor(address initialOwner) ERC20("Vouch Stake", "VST") Ownable(initialOwner) {}

    /// @notice Mints `value` tokens to `to` (owner only; dev/test token). Emits `Transfer(address(0), to, value)`.
    /// @param to The recipient.
    /// @param value The amount, in 18-decimal units.
    function mint(address to, uint256 value) external onlyOwner {
        _mint(to, value);
    }
}
